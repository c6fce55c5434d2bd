"""The overview's store queries (events per minute over the last hour, active sessions) on a large events table,
SQLite: as written in backend/store/traffic.py (the site filter as ``site_id + 0``, so the time index is read)
against the plain ``site_id = :site`` form (SQLite then reads all of the site's rows through its session index).
Medians of several runs; the decision it documents: no new index on events for the overview.

    .venv/bin/python tests/bench/bench_admin_overview.py [--events 1000000] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, insert, select  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.store.tables import Event  # noqa: E402
from backend.store.traffic import ACTIVE_SESSION_MS, MINUTE_MS, active_sessions, events_per_minute  # noqa: E402

SPAN_MS = 14 * 24 * 3_600_000          # two weeks of traffic, the last hour included
CHUNK = 50_000


def fill(engine, site_id: int, events: int, now: int) -> None:
    for start in tqdm(range(0, events, CHUNK), desc="events", unit="chunk", file=sys.stderr, leave=False):
        n = min(CHUNK, events - start)
        rows = [{"site_id": site_id, "session": f"s{(start + i) // 6:012d}padpadpadpad", "type": "view",
                 "item": f"SKU-{(start + i) * 7 % 5000}",
                 "received_ms": now - SPAN_MS + SPAN_MS * (start + i) // events} for i in range(n)]
        with engine.begin() as conn:
            conn.execute(insert(Event), rows)


def plain_queries(engine, site_id: int, now: int) -> None:
    """The same two queries with ``site_id = :site``."""
    end = now - now % MINUTE_MS
    start = end - 60 * MINUTE_MS
    bucket = (Event.received_ms - start) // MINUTE_MS
    with engine.connect() as conn:
        conn.execute(select(bucket, func.count()).where(Event.site_id == site_id, Event.received_ms >= start,
                                                        Event.received_ms < end).group_by(bucket)).all()
        conn.execute(select(func.count(func.distinct(Event.session))).where(
            Event.site_id == site_id, Event.received_ms >= now - ACTIVE_SESSION_MS)).scalar()


def overview_queries(engine, site_id: int, now: int) -> None:
    events_per_minute(engine, site_id, 60, now=now)
    active_sessions(engine, site_id, now=now)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    now = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        site = create_site(engine, "bench", []).site_id
        fill(engine, site, args.events, now)
        times: dict[str, list[float]] = {"overview.py (site_id + 0)": [], "plain site_id = :site": []}
        for _ in range(args.rounds):                  # interleaved, so both see the same machine load
            for label, run in zip(times, (overview_queries, plain_queries)):
                t0 = time.perf_counter()
                run(engine, site, now)
                times[label].append(time.perf_counter() - t0)
        engine.dispose()
    print(f"SQLite, {args.events:,} events over two weeks; the overview's two queries, median of {args.rounds}")
    med = {label: statistics.median(ts) for label, ts in times.items()}
    for label, t in med.items():
        print(f"  {label:<28} {1000 * t:8.2f} ms")
    print(f"  ratio x{med['plain site_id = :site'] / med['overview.py (site_id + 0)']:.0f}")
    print(f"reproduce: .venv/bin/python tests/bench/bench_admin_overview.py --events {args.events} "
          f"--rounds {args.rounds}")


if __name__ == "__main__":
    main()
