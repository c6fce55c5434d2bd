"""``upnext demo``: a self-contained demo on SQLite under ./var: migrate, a demo site with its keys, serve."""
from __future__ import annotations

import argparse
import json
import sys

from backend.settings import Settings

DEMO_SITE = "demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="set up the demo under ./var and serve it")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-serve", action="store_true", help="prepare everything, print the URLs, do not serve")
    p.set_defaults(run=run)


def ensure_demo_site(settings: Settings, base_url: str) -> dict:
    """The demo site's keys, kept in <data_dir>/demo-site.json (the secret key is only shown once)."""
    from backend.store.db import engine_from_settings
    from backend.store.sites import create_site, list_sites, rotate_keys, set_origins

    path = settings.data_dir / "demo-site.json"
    engine = engine_from_settings(settings)
    try:
        known = path.exists() and json.loads(path.read_text())
        names = {s["name"]: s for s in list_sites(engine)}
        if DEMO_SITE not in names:
            keys = create_site(engine, DEMO_SITE, [base_url]).as_json()
        elif not known or known.get("publishable_key") != names[DEMO_SITE]["publishable_key"]:
            keys = rotate_keys(engine, DEMO_SITE).as_json()       # lost the secret: issue new keys
        else:
            keys = known
        origins = sorted({*keys["allowed_origins"], base_url})
        keys["allowed_origins"] = list(set_origins(engine, DEMO_SITE, origins))
    finally:
        engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def run(args: argparse.Namespace, settings: Settings) -> int:
    from backend.commands.serve import run as serve
    from backend.store.db import migrate

    settings = Settings.from_env(**{k: v for k in ("host", "port") if (v := getattr(args, k)) is not None})
    migrate(settings.sqlalchemy_url)
    base = f"http://{settings.host}:{settings.port}"
    keys = ensure_demo_site(settings, base)
    print(f"""
Upnext demo
  server       {base}/
  health       {base}/healthz
  metrics      {base}/metrics
  site         {keys['site']}  publishable key {keys['publishable_key']}
  keys file    {settings.data_dir / 'demo-site.json'}
""", file=sys.stderr, flush=True)
    if args.no_serve:
        return 0
    args.host, args.port, args.workers = settings.host, settings.port, None
    return serve(args, settings)
