"""``upnext demo``: a self-contained demo on SQLite under ./var: two demo sites (a shop and a video site), each
with its generated catalogue and visits, placements and a trained live model; then serve them. The models use
item features (backend/item_features.py), so a product added to a demo catalogue later is recommended at once."""
from __future__ import annotations

import argparse
import json
import sys
import time

from tqdm import tqdm

from backend.commands.serve import run as serve
from backend.demo.seed import seed_demo
from backend.gru4rec.params import parse_params
from backend.publishing import publish_artifact
from backend.settings import Settings
from backend.store.db import engine_from_settings, migrate
from backend.store.export import export_sessions
from backend.store.items import feature_records
from backend.store.placements import PlacementConfig, list_placements, save_placement
from backend.store.sites import create_site, list_sites, rotate_keys, set_origins
from backend.store.trained_models import live_models
from backend.training import train_bundle

# site name -> (catalogue kind, placements: name, page kind, algorithm, n, title, same category)
DEMO_SITES = {
    "demo-shop": ("product", (("for-you", "home", "gru4rec_next", 10, "Picked for you", False),
                              ("similar", "product", "item_to_item", 8, "Similar items", True),
                              ("next", "product", "gru4rec_next", 8, "Customers went on to", False))),
    "demo-video": ("video", (("for-you", "home", "gru4rec_next", 8, "Watch next", False),
                             ("up-next", "video", "gru4rec_sequence", 6, "Up next", False))),
}
DEMO_PARAMS = "loss=cross-entropy,layers=96,batch_size=32,n_sample=256,sample_alpha=0.5,dropout_p_embed=0.1," \
              "learning_rate=0.1,momentum=0.0,logq=1.0,n_epochs=4,item_features=True,id_dropout=0.5," \
              "id_dropout_scaling=serve"
KEYS_FILE = "demo-sites.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="set up the demo shop and video site under ./var and serve them")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-serve", action="store_true", help="prepare everything, print the URLs, do not serve")
    p.add_argument("--retrain", action="store_true", help="train new demo models even if some are live")
    p.set_defaults(run=run)


def ensure_demo_sites(settings: Settings, base_url: str) -> dict[str, dict]:
    """site name -> its keys, kept in <data_dir>/demo-sites.json (a secret key is shown only once)."""
    path = settings.data_dir / KEYS_FILE
    known = json.loads(path.read_text()) if path.exists() else {}
    engine = engine_from_settings(settings)
    out = {}
    try:
        existing = {s["name"]: s for s in list_sites(engine)}
        for name in DEMO_SITES:
            if name not in existing:
                keys = create_site(engine, name, [base_url]).as_json()
            elif known.get(name, {}).get("publishable_key") != existing[name]["publishable_key"]:
                keys = rotate_keys(engine, name).as_json()          # the secret was lost: issue new keys
            else:
                keys = known[name]
            keys["allowed_origins"] = list(set_origins(engine, name, sorted({*keys["allowed_origins"], base_url})))
            out[name] = keys
    finally:
        engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    path.chmod(0o600)
    return out


def prepare(settings: Settings, name: str, site_id: int, *, retrain: bool = False) -> dict:
    """Seed the site's catalogue and visits, configure its placements, train and publish a model if none is live."""
    kind, placements = DEMO_SITES[name]
    engine = engine_from_settings(settings)
    try:
        with tqdm(desc=f"{name}: seed visits", unit="ev", unit_scale=True, file=sys.stderr, leave=False) as bar:
            seeded = seed_demo(engine, site_id, kind, progress=lambda done, total: (
                setattr(bar, "total", total), bar.update(done - bar.n)))
        have = {p.name for p in list_placements(engine, site_id)}
        for pname, page_kind, algorithm, n, title, same in placements:
            if pname not in have:
                save_placement(engine, site_id, PlacementConfig(pname, page_kind=page_kind, algorithm=algorithm,
                                                                n=n, title=title, same_category=same))
        if site_id in live_models(engine) and not retrain:
            return {**seeded, "trained": None}
        data, records = export_sessions(engine, site_id), feature_records(engine, site_id)
        out = settings.model_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with tqdm(desc=f"{name}: train", unit="ev", unit_scale=True, file=sys.stderr) as bar:
            def progress(p):
                bar.total = p.pairs_total * p.n_epochs
                bar.set_postfix(epoch=f"{p.epoch}/{p.n_epochs}", loss=f"{p.loss:.3f}",
                                ev_s=f"{p.events_per_second:,.0f}", refresh=False)
                bar.update((p.epoch - 1) * p.pairs_total + p.pairs_done - bar.n)
            summary = train_bundle(data, parse_params(DEMO_PARAMS), out, source=f"site:{name}", progress=progress,
                                   feature_records=records)
        model_id = publish_artifact(engine, site_id, out, model_dir=settings.model_dir)
        return {**seeded, "trained": {"model_id": model_id, "path": str(out),
                                      "seconds": summary["training"]["seconds"]}}
    finally:
        engine.dispose()


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = Settings.from_env(**{k: v for k in ("host", "port") if (v := getattr(args, k)) is not None})
    migrate(settings.sqlalchemy_url)
    base = f"http://{settings.host}:{settings.port}"
    sites = ensure_demo_sites(settings, base)
    admin_hint = ("password from UPNEXT_ADMIN_PASSWORD" if settings.admin_password else
                  f"first visit: set a password with the code in {settings.data_dir / 'admin-setup-code'}")
    lines = []
    for name, keys in sites.items():
        done = prepare(settings, name, keys["id"], retrain=args.retrain)
        model = (f"model trained in {done['trained']['seconds']:.0f} s" if done["trained"]
                 else "model already live (--retrain trains a new one)")
        lines.append(f"  {name:<11} {done['items']} items, {model}; publishable key {keys['publishable_key']}")
    print("\nUpnext demo\n" + "\n".join(lines) + f"""
  keys file   {settings.data_dir / KEYS_FILE}

  the shop        {base}/demo/shop/
  the video site  {base}/demo/video/
  admin           {base}/admin/  ({admin_hint})
  health          {base}/healthz
""", file=sys.stderr, flush=True)
    if args.no_serve:
        return 0
    args.host, args.port, args.workers = settings.host, settings.port, None
    return serve(args, settings)
