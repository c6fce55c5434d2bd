"""``upnext model publish|list|rollback``: make a trained artifact a site's live model (running servers swap it
in within seconds), list a site's models, and go back to the previous one."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from backend.commands.helpers import resolve_site
from backend.publishing import publish_artifact
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.trained_models import list_models as records
from backend.store.trained_models import rollback as go_back


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="publish, list and roll back a site's models")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    p = model_sub.add_parser("publish", help="make a trained artifact the site's live model (copied, hashed and checked)")
    p.add_argument("path", type=Path, metavar="DIR", help="artifact directory written by `upnext train`")
    p.add_argument("--site", help="site name (optional when there is only one site)")
    p.set_defaults(run=publish)
    p = model_sub.add_parser("list", help="a site's models, newest first")
    p.add_argument("--site")
    p.set_defaults(run=list_models)
    p = model_sub.add_parser("rollback", help="make the previously live model live again")
    p.add_argument("--site")
    p.set_defaults(run=rollback)


def publish(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    site = resolve_site(engine, args.site)
    model_id = publish_artifact(engine, site["id"], args.path, model_dir=settings.model_dir)
    stored = next(m.path for m in records(engine, site["id"]) if m.id == model_id)
    print(json.dumps({"site": site["name"], "model_id": model_id, "path": stored, "source": str(args.path.resolve()),
                      "live": True}))
    return 0


def list_models(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    site = resolve_site(engine, args.site)
    for m in records(engine, site["id"]):
        recall = m.metrics.get("recall@20")
        print(f"{m.id:>4} {'LIVE' if m.live else '    '} {m.kind:<10} "
              f"recall@20 {recall if recall is not None else '-':<8} {m.path}")
    return 0


def rollback(args, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    site = resolve_site(engine, args.site)
    print(json.dumps({"site": site["name"], "model_id": go_back(engine, site["id"]), "live": True}))
    return 0
