"""Ingestion benchmark (issue 2): a load generator in another process posts batches of 10 events from 16
concurrent clients to `upnext serve` (one worker) for 30 s, on SQLite and on PostgreSQL (fsync on).

Prints accepted events/s, p50/p99 latency and the count check (rows in `events` == events acknowledged with
202, exactly), then a crash run: kill -9 in the middle of the load, restart, every acknowledged event stored.

    .venv/bin/python tests/bench/bench_ingest.py [--seconds 30] [--clients 16] [--only sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, select  # noqa: E402

from backend.settings import REPO_ROOT  # noqa: E402
from backend.simulation.server import ServerProcess  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.store.tables import Event  # noqa: E402
from tests.support.postgres import PostgresServer, PostgresUnavailable  # noqa: E402

ORIGIN = "http://127.0.0.1"
NO_FIRST_MODEL = {"UPNEXT_FIRST_MODEL_SESSIONS": "0"}   # the load's sessions would start a training run


def prepare(url: str) -> str:
    migrate(url)
    engine = make_engine(url)
    key = create_site(engine, f"bench-{time.time_ns()}", [ORIGIN]).publishable_key
    engine.dispose()
    return key


def per_session(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(Event.session, func.count()).group_by(Event.session)).all())
    engine.dispose()
    return rows


def load(server: ServerProcess, key: str, seconds: float, clients: int, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.support.loadgen", "--url", server.url, "--key", key,
                             "--origin", ORIGIN, "--clients", str(clients), "--seconds", str(seconds),
                             "--out", str(out)], cwd=REPO_ROOT)


def run_store(name: str, url: str, seconds: float, clients: int, tmp: Path) -> None:
    key = prepare(url)
    out = tmp / f"{name}.json"
    with ServerProcess(url, log_path=tmp / f"{name}.log", env=NO_FIRST_MODEL) as server:
        load(server, key, seconds, clients, out).wait()
    result = json.loads(out.read_text())
    rows = per_session(url)
    stored = sum(rows.values())
    exact = stored == result["acked_events"] and all(rows.get(s) == 10 for s in result["acked_sessions"])
    print(f"{name:<11} {result['events_per_s']:>10,.0f} events/s  p50 {result['p50_ms']:>6} ms  "
          f"p99 {result['p99_ms']:>6} ms  requests {result['requests']}  status {result['status']}  "
          f"errors {result['errors']}  acked {result['acked_events']}  rows {stored}  "
          f"count check {'EXACT' if exact else 'MISMATCH'}", flush=True)

    # crash run: kill -9 half way through, restart, count
    key = prepare(url)
    before = per_session(url)
    out = tmp / f"{name}-crash.json"
    server = ServerProcess(url, log_path=tmp / f"{name}-crash.log", env=NO_FIRST_MODEL).start()
    gen = load(server, key, seconds / 3, clients, out)
    time.sleep(seconds / 6)
    server.kill()
    gen.wait()
    with ServerProcess(url, log_path=tmp / f"{name}-restart.log", env=NO_FIRST_MODEL):
        pass
    result = json.loads(out.read_text())
    after = per_session(url)
    lost = [s for s in result["acked_sessions"] if after.get(s) != 10]
    extra = sum(after.values()) - sum(before.values()) - result["acked_events"]
    print(f"{name:<11} crash test: kill -9 after {seconds / 6:.0f} s; acked {result['acked_events']} events, "
          f"lost {len(lost) * 10}, stored-but-unacknowledged (in flight at the kill) {extra}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--only", choices=("sqlite", "postgresql"))
    args = p.parse_args()
    print(f"ingestion: {args.clients} clients x batches of 10 events, {args.seconds:.0f} s, one server worker")
    with tempfile.TemporaryDirectory(prefix="upnext-bench-") as tmp:
        tmp = Path(tmp)
        if args.only in (None, "sqlite"):
            run_store("sqlite", f"sqlite:///{tmp / 'bench.db'}", args.seconds, args.clients, tmp)
        if args.only in (None, "postgresql"):
            try:
                with PostgresServer(durable=True) as pg:
                    run_store("postgresql", pg.create_database("bench"), args.seconds, args.clients, tmp)
            except PostgresUnavailable as exc:
                print(f"postgresql  skipped: {exc}")
    print("reproduce: .venv/bin/python tests/bench/bench_ingest.py --seconds 30 --clients 16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
