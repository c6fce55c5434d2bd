"""PostgreSQL at volume (issue 16, part 4): ingestion into the day-partitioned events table against an
unpartitioned copy (same run, same server, same rows, same indexes), retention of one day (dropping its
partition against deleting its rows in chunks), and the training export's time and peak memory.

    .venv/bin/python tests/bench/bench_partitions.py [--events 1000000] [--days 10] [--batch 5000]
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from sqlalchemy import text  # noqa: E402

from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.export import export_sessions  # noqa: E402
from backend.store.partitions import DAY_MS, drop_partitions_before, ensure_partitions  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

INDEXES = {"rec": "rec", "received": "received_ms", "site_session": "site_id, session, received_ms",
           "site_type_session": "site_id, type, session, client_ms"}


def rows(n: int, days: int, site: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    end = (time.time_ns() // 1_000_000 // DAY_MS) * DAY_MS          # midnight today (UTC)
    t = np.sort(rng.integers(end - days * DAY_MS, end, n))
    sessions = (np.arange(n) // 8).astype(np.int64)                 # sessions of 8 events, in time order
    items = rng.zipf(1.3, n) % 50_000
    return [{"s": site, "session": f"s{sessions[k]:021d}", "item": f"I{items[k]}", "t": int(t[k])}
            for k in range(n)]


def ingest(engine, table: str, data: list[dict], batch: int) -> float:
    """Seconds to insert ``data`` in transactions of ``batch`` rows."""
    sql = text(f"INSERT INTO {table} (site_id, session, type, item, client_ms, received_ms) "
               "VALUES (:s, :session, 'view', :item, :t, :t)")
    t0 = time.perf_counter()
    for k in range(0, len(data), batch):
        with engine.begin() as conn:                                 # one transaction per batch: group commit
            conn.execute(sql, data[k:k + batch])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    pg = PostgresServer().start()
    try:
        url = pg.create_database("bench_partitions")
        migrate(url)
        engine = make_engine(url, statement_timeout_s=3600)
        site = create_site(engine, "bench", []).site_id
        first_day = (time.time_ns() // 1_000_000) // DAY_MS - args.days
        ensure_partitions(engine, now=first_day * DAY_MS, ahead_days=args.days + 3)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE events_flat (LIKE events INCLUDING DEFAULTS)"))
            conn.execute(text("ALTER TABLE events_flat ADD PRIMARY KEY (id)"))
            for name, cols in INDEXES.items():
                conn.execute(text(f"CREATE INDEX ix_flat_{name} ON events_flat ({cols})"))
        data = rows(args.events, args.days, site)
        half = len(data) // 2                # in turns (A B B A), so neither table has the warm cache to itself
        flat = ingest(engine, "events_flat", data[:half], args.batch)
        parted = ingest(engine, "events", data[:half], args.batch) + ingest(engine, "events", data[half:], args.batch)
        flat += ingest(engine, "events_flat", data[half:], args.batch)
        parted, flat = len(data) / parted, len(data) / flat
        print(f"ingestion of {args.events:,} events over {args.days} days, {args.batch} per transaction: "
              f"partitioned {parted:,.0f} events/s, unpartitioned {flat:,.0f} events/s", flush=True)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE events; ANALYZE events_flat"))
        cutoff = (first_day + 1) * DAY_MS
        t0 = time.perf_counter()
        dropped, n = drop_partitions_before(engine, cutoff)
        drop_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        deleted = 0
        while True:
            with engine.begin() as conn:
                k = conn.execute(text("DELETE FROM events_flat WHERE id IN (SELECT id FROM events_flat WHERE "
                                      "received_ms < :c LIMIT 20000)"), {"c": cutoff}).rowcount
            deleted += k
            if k < 20_000:
                break
        delete_s = time.perf_counter() - t0
        print(f"retention of the oldest day: dropping its partition ({n:,} events, {dropped}) {drop_s * 1000:.0f} ms; "
              f"deleting its {deleted:,} rows in chunks of 20,000 from the unpartitioned table {delete_s:.2f} s")
        tracemalloc.start()
        t0 = time.perf_counter()
        data_out = export_sessions(engine, site, max_events_per_second=None)
        export_s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"training export: {data_out.n_events:,} events in {data_out.n_sessions:,} sessions, {export_s:.1f} s, "
              f"peak Python memory {peak / 2**20:.0f} MiB")
        engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
