"""Onboarding benchmark (issue 18): the time from a fresh site with a catalogue to its first live model, with
simulated traffic from real sessions, nothing done by hand in between.

    .venv/bin/python tests/bench/bench_first_model.py [--sessions 1200] [--threshold 1000] [--params diginetica]

A real server (temporary SQLite store, UPNEXT_FIRST_MODEL_SESSIONS=threshold, training on the CPU) gets a site
whose catalogue holds the replayed sessions' items; then the first ``--sessions`` sessions of yoochoose1_64's
training file are replayed through its HTTP API as visitors (backend/simulation/replay.py: views, impressions,
clicks when the true next item is shown, plays, carts, purchases). The server must notice the sessions, start the
first training run through its supervisor with the gate, and make the model live. Prints the phases' times.
The replay is much faster than real visitors: in real life the time to collect the sessions dominates.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from backend.simulation.replay import plan_visits, replay  # noqa: E402
from backend.simulation.server import ServerProcess  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.items import save_items  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.store.tables import Site, TrainingRun  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
DATA = SHARED / "yoochoose1_64-srgnn" / "train_sessions.txt"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=1200)
    p.add_argument("--threshold", type=int, default=1000)
    p.add_argument("--params", default="diginetica")
    p.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return 0
    sessions = []
    with open(DATA) as f:
        for line in f:
            items = line.split()
            if len(items) >= 2:
                sessions.append(items)
            if len(sessions) == args.sessions:
                break
    items = sorted({i for s in sessions for i in s})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'upnext.db'}"
        migrate(url)
        engine = make_engine(url)
        keys = create_site(engine, "shop", ["https://shop.example"])
        save_items(engine, keys.site_id, [{"id": i, "title": f"Item {i}", "url": f"/p/{i}"} for i in items])
        env = {"UPNEXT_FIRST_MODEL_SESSIONS": str(args.threshold), "UPNEXT_FIRST_MODEL_PARAMS": args.params,
               "UPNEXT_TRAIN_DEVICE": "cpu"}
        with ServerProcess(url, data_dir=root / "var", env=env, log_path=root / "server.log") as server:
            t0 = time.monotonic()
            asyncio.run(replay(server.url, keys.publishable_key, "product-page", plan_visits(sessions, seed=1),
                               concurrency=8))
            t_traffic = time.monotonic() - t0
            run_at = live_at = None
            while time.monotonic() - t0 < args.timeout:
                with engine.connect() as conn:
                    run = conn.execute(select(TrainingRun).order_by(TrainingRun.id)).first()
                    live = conn.execute(select(Site.live_model_id)).scalar()
                if run is not None and run_at is None:
                    run_at = time.monotonic() - t0
                if run is not None and run.status in ("failed", "cancelled"):
                    print(f"first run {run.status}: {run.error}")
                    return 1
                if live is not None:
                    live_at = time.monotonic() - t0
                    break
                time.sleep(1)
        engine.dispose()
    print(f"sessions replayed: {len(sessions)} ({len(items)} items), threshold {args.threshold}, "
          f"params {args.params}")
    print(f"traffic replayed in {t_traffic:.1f} s; first run started at {run_at:.1f} s; "
          f"model live at {live_at:.1f} s (training and gate: {live_at - run_at:.1f} s)" if live_at else
          f"no live model within {args.timeout:.0f} s (run started at {run_at})")
    return 0 if live_at else 1


if __name__ == "__main__":
    sys.exit(main())
