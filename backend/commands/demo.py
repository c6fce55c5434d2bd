"""``upnext demo``: a self-contained demo on SQLite under ./var: migrate, a demo site with its keys, serve."""
from __future__ import annotations

import argparse
import json
import sys
import time

from backend.settings import Settings

DEMO_SITE = "demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="set up the demo under ./var and serve it")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-serve", action="store_true", help="prepare everything, print the URLs, do not serve")
    p.add_argument("--retrain", action="store_true", help="train a new demo model even if one is live")
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


DEMO_PLACEMENTS = (
    # name, page kind, algorithm, n, title, same category
    ("for-you", "home", "gru4rec_next", 10, "Picked for you", False),
    ("similar", "product", "item_to_item", 8, "Similar items", True),
    ("next", "product", "gru4rec_next", 8, "Customers went on to", False),
    ("video-for-you", "home", "gru4rec_next", 8, "Watch next", False),
    ("up-next", "video", "gru4rec_sequence", 6, "Up next", False),
)
DEMO_PARAMS = "loss=cross-entropy,layers=96,batch_size=32,n_sample=256,sample_alpha=0.5,dropout_p_embed=0.1," \
              "learning_rate=0.1,momentum=0.0,logq=1.0,n_epochs=4"


def prepare(settings: Settings, site_id: int, *, retrain: bool = False) -> dict:
    """Seed the catalogue and visits, configure the placements, train and publish a model when none is live."""
    from tqdm import tqdm

    from backend.commands.publish import publish_artifact
    from backend.demo.seed import seed_demo
    from backend.gru4rec.params import parse_params
    from backend.store.db import engine_from_settings
    from backend.store.export import export_sessions
    from backend.store.placements import PlacementConfig, list_placements, save_placement
    from backend.store.trained_models import live_models
    from backend.training import train_bundle

    engine = engine_from_settings(settings)
    try:
        with tqdm(desc="seed demo visits", unit="ev", unit_scale=True, file=sys.stderr, leave=False) as bar:
            seeded = seed_demo(engine, site_id, progress=lambda done, total: (
                setattr(bar, "total", total), bar.update(done - bar.n)))
        have = {p.name for p in list_placements(engine, site_id)}
        for name, kind, algorithm, n, title, same in DEMO_PLACEMENTS:
            if name not in have:
                save_placement(engine, site_id, PlacementConfig(name, page_kind=kind, algorithm=algorithm, n=n,
                                                                title=title, same_category=same))
        if site_id in live_models(engine) and not retrain:
            return {**seeded, "trained": None}
        data = export_sessions(engine, site_id)
        out = settings.model_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        with tqdm(desc="train demo model", unit="ev", unit_scale=True, file=sys.stderr) as bar:
            def progress(p):
                bar.total = p.pairs_total * p.n_epochs
                bar.set_postfix(epoch=f"{p.epoch}/{p.n_epochs}", loss=f"{p.loss:.3f}",
                                ev_s=f"{p.events_per_second:,.0f}", refresh=False)
                bar.update((p.epoch - 1) * p.pairs_total + p.pairs_done - bar.n)
            summary = train_bundle(data, parse_params(DEMO_PARAMS), out, source="site:demo", progress=progress)
        model_id = publish_artifact(engine, site_id, out)
        return {**seeded, "trained": {"model_id": model_id, "path": str(out),
                                      "seconds": summary["training"]["seconds"]}}
    finally:
        engine.dispose()


def run(args: argparse.Namespace, settings: Settings) -> int:
    from backend.commands.serve import run as serve
    from backend.store.db import migrate

    settings = Settings.from_env(**{k: v for k in ("host", "port") if (v := getattr(args, k)) is not None})
    migrate(settings.sqlalchemy_url)
    base = f"http://{settings.host}:{settings.port}"
    keys = ensure_demo_site(settings, base)
    done = prepare(settings, keys["id"], retrain=args.retrain)
    model = (f"trained in {done['trained']['seconds']:.0f} s: {done['trained']['path']}" if done["trained"]
             else "already live (--retrain trains a new one)")
    print(f"""
Upnext demo ({done['items']} catalogue items; model {model})
  the shop        {base}/demo/shop/
  the video site  {base}/demo/video/
  health          {base}/healthz
  metrics         {base}/metrics
  site            {keys['site']}  publishable key {keys['publishable_key']}
  keys file       {settings.data_dir / 'demo-site.json'}
""", file=sys.stderr, flush=True)
    if args.no_serve:
        return 0
    args.host, args.port, args.workers = settings.host, settings.port, None
    return serve(args, settings)
