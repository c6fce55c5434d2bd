"""End-to-end serving benchmark (issue 4): `upnext serve` with a GRU4Rec model trained on diginetica-srgnn
(43k items) and a catalogue of its items; a load generator in another process sends 200 recommendation
requests/s for 60 s (open loop), from visitors replaying real test sessions with their history, each page view
also posted as an event. Prints p50/p99 latency and errors (target: p99 <= 25 ms, 0 errors).

    .venv/bin/python tests/bench/bench_serve.py [--model DIR] [--params diginetica,n_epochs=1]
                                                [--rate 200] [--seconds 60] [--workers 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.gru4rec.data import read_sessions  # noqa: E402
from backend.gru4rec.params import parse_params  # noqa: E402
from backend.publishing import publish_artifact  # noqa: E402
from backend.simulation.server import ServerProcess  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.items import clean_item, upsert_items  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.training import train_bundle  # noqa: E402

DATA = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data")) / "diginetica-srgnn"
NO_REC_LIMIT = {"UPNEXT_RATE_KEY_RECOMMENDATIONS": "1e9"}   # the load comes from one key: measure, do not limit


def train_model(out: Path, params: str) -> None:
    data = read_sessions(DATA / "train_sessions.txt")
    t0 = time.perf_counter()
    summary = train_bundle(data, parse_params(params), out, source=str(DATA / "train_sessions.txt"))
    print(f"trained {params} on {data.n_events:,} events, {data.n_items:,} items in "
          f"{time.perf_counter() - t0:.0f} s ({summary['training']['events_per_second']:,.0f} events/s)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="an existing bundle trained on diginetica-srgnn (else train one)")
    p.add_argument("--params", default="diginetica,n_epochs=1")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    if not (DATA / "train_sessions.txt").exists():
        print(f"skipped: {DATA} not found (see ../shared/data/README.md)")
        return 0
    with tempfile.TemporaryDirectory(prefix="upnext-bench-serve-") as tmp:
        tmp = Path(tmp)
        model = args.model or tmp / "model"
        if args.model is None:
            train_model(model, args.params)
        url = f"sqlite:///{tmp / 'serve.db'}"
        migrate(url)
        engine = make_engine(url)
        keys = create_site(engine, "bench", ["http://127.0.0.1"])
        item_ids = json.loads((model / "manifest.json").read_text())["item_ids"]
        with engine.begin() as conn:
            upsert_items(conn, keys.site_id, [clean_item({"id": i, "title": f"Item {i}", "url": f"/p/{i}",
                                                          "price": 10.0, "currency": "EUR"}) for i in item_ids])
        publish_artifact(engine, keys.site_id, model, model_dir=tmp / "models")
        engine.dispose()
        sessions = [line.split() for line in (DATA / "test_sessions.txt").read_text().splitlines() if line.strip()]
        (tmp / "sessions.json").write_text(json.dumps(sessions))
        with ServerProcess(url, workers=args.workers, log_path=tmp / "server.log", env=NO_REC_LIMIT):
            pass   # first start compiles and caches the kernels; the measured server starts warm like a restart
        with ServerProcess(url, workers=args.workers, log_path=tmp / "server.log", env=NO_REC_LIMIT) as server:
            out = tmp / "load.json"
            subprocess.run([sys.executable, "-m", "tests.support.recload", "--url", server.url, "--key",
                            keys.publishable_key, "--sessions", str(tmp / "sessions.json"), "--rate",
                            str(args.rate), "--seconds", str(args.seconds), "--out", str(out)], cwd=REPO,
                           check=True)
        r = json.loads(out.read_text())
    print(f"serving {len(item_ids):,} items, {args.workers} worker(s): {r['requests']:,} requests in {r['seconds']} s "
          f"({r['rate_achieved']}/s of {r['rate_target']:.0f}/s target): p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, "
          f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms, errors {r['errors']}, status {r['status']}, "
          f"late starts {r['late_starts']}")
    print(f"reproduce: .venv/bin/python tests/bench/bench_serve.py --rate {args.rate:.0f} --seconds {args.seconds:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
