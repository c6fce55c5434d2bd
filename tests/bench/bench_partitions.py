"""PostgreSQL at volume (issue 16, part 4): ingestion into the day-partitioned events table against an
unpartitioned copy (same run, same server, same rows, same indexes), retention of one day (dropping its
partition against deleting its rows in chunks, each while a writer keeps inserting: its slowest insert says
whether retention blocks ingestion), the training export's time and peak memory, and the plans of the admin
overview's queries (which partitions they read, and how).

Rows are generated batch by batch (memory does not grow with --events), in time order over the last --days days
up to now, sessions of 8 events, as live traffic arrives.

    .venv/bin/python tests/bench/bench_partitions.py [--events 1000000] [--days 10] [--batch 5000]
    .venv/bin/python tests/bench/bench_partitions.py --events 50000000 --days 10    # the issue's size (hours)
"""
from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from sqlalchemy import text  # noqa: E402

from backend.store import traffic  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.export import export_sessions  # noqa: E402
from backend.store.partitions import DAY_MS, drop_partitions_before, ensure_partitions  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from tests.support.plans import describe, explain, fill, holding_rows, recorded  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

INDEXES = {"rec": "rec", "received": "received_ms", "site_session": "site_id, session, received_ms",
           "site_type_session": "site_id, type, session, client_ms"}


class Rows:
    """Event k of n: received at start + k * span / n (time order), session k // 8, a Zipf-popular item; a batch
    is made when asked for, from a seed of its own, so any batch can be made again without keeping the others."""

    def __init__(self, n: int, start_ms: int, end_ms: int, site: int):
        self.n, self.start, self.span, self.site = n, start_ms, end_ms - start_ms, site

    def batch(self, lo: int, hi: int) -> list[dict]:
        k = np.arange(lo, hi, dtype=np.int64)
        t = self.start + k * self.span // self.n
        items = np.random.default_rng(lo).zipf(1.3, hi - lo) % 50_000
        return [{"s": self.site, "session": f"s{k[j] // 8:021d}", "item": f"I{items[j]}", "t": int(t[j])}
                for j in range(hi - lo)]


def ingest(engine, table: str, rows: Rows, lo: int, hi: int, batch: int) -> float:
    """Seconds to insert events lo..hi in transactions of ``batch`` rows."""
    sql = text(f"INSERT INTO {table} (site_id, session, type, item, client_ms, received_ms) "
               "VALUES (:s, :session, 'view', :item, :t, :t)")
    spent = 0.0
    for k in range(lo, hi, batch):
        data = rows.batch(k, min(k + batch, hi))
        t0 = time.perf_counter()
        with engine.begin() as conn:                                 # one transaction per batch: group commit
            conn.execute(sql, data)
        spent += time.perf_counter() - t0
    return spent


class Writer(threading.Thread):
    """Inserts 100-event batches of today into ``table`` until stopped; records each batch's latency."""

    def __init__(self, engine, table: str, site: int):
        super().__init__(daemon=True)
        self.engine, self.table, self.site = engine, table, site
        self.stop, self.latencies = threading.Event(), []

    def run(self) -> None:
        sql = text(f"INSERT INTO {self.table} (site_id, session, type, item, client_ms, received_ms) "
                   "VALUES (:s, 'swriterwriterwriter0001', 'view', 'I1', :t, :t)")
        while not self.stop.is_set():
            now = time.time_ns() // 1_000_000
            t0 = time.perf_counter()
            with self.engine.begin() as conn:
                conn.execute(sql, [{"s": self.site, "t": now}] * 100)
            self.latencies.append(time.perf_counter() - t0)

    def during(self, fn):
        """Run ``fn`` with this writer inserting; returns (fn's result, seconds, writer's slowest batch in ms,
        batches inserted meanwhile)."""
        self.start()
        time.sleep(0.2)
        before = len(self.latencies)
        t0 = time.perf_counter()
        out = fn()
        spent = time.perf_counter() - t0
        during = self.latencies[before:] or [0.0]
        self.stop.set()
        self.join()
        return out, spent, max(during) * 1000, len(during)


def delete_chunks(engine, cutoff: int) -> int:
    deleted = 0
    while True:
        with engine.begin() as conn:
            k = conn.execute(text("DELETE FROM events_flat WHERE id IN (SELECT id FROM events_flat WHERE "
                                  "received_ms < :c LIMIT 20000)"), {"c": cutoff}).rowcount
        deleted += k
        if k < 20_000:
            return deleted


def overview_plans(engine, site: int) -> None:
    """The admin overview's queries as the page sends them now, and the partitions and indexes their plans read."""
    with recorded(engine) as sent:
        traffic.events_per_minute(engine, site, 60)
        traffic.requests_per_minute(engine, site, 60)
        traffic.active_sessions(engine, site)
        traffic.fallback_shares(engine, site, since_ms=time.time_ns() // 1_000_000 - 3_600_000)
    full = holding_rows(engine)
    for name, (statement, parameters) in zip(["events per minute", "requests per minute", "active sessions",
                                              "fallback shares"], sent):
        scans = explain(engine, statement, parameters)
        read = [s for s in scans if s.relation in full]
        seq = [s.relation for s in read if s.how == "Seq Scan"]
        print(f"  {name}: reads {describe(read)}; {len(scans) - len(read)} empty partitions in the plan; "
              f"sequential scans of tables with rows: {seq or 'none'}")


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
        engine = make_engine(url, statement_timeout_s=3600 * 6)
        site = create_site(engine, "bench", []).site_id
        now = time.time_ns() // 1_000_000
        first_day = now // DAY_MS - args.days
        ensure_partitions(engine, now=first_day * DAY_MS, ahead_days=args.days + 3)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE events_flat (LIKE events INCLUDING DEFAULTS)"))
            conn.execute(text("ALTER TABLE events_flat ADD PRIMARY KEY (id)"))
            for name, cols in INDEXES.items():
                conn.execute(text(f"CREATE INDEX ix_flat_{name} ON events_flat ({cols})"))
        rows = Rows(args.events, first_day * DAY_MS, now, site)
        n, half = args.events, args.events // 2  # in turns (A B B A), so neither table has the warm cache to itself
        flat = ingest(engine, "events_flat", rows, 0, half, args.batch)
        parted = ingest(engine, "events", rows, 0, half, args.batch) + ingest(engine, "events", rows, half, n,
                                                                               args.batch)
        flat += ingest(engine, "events_flat", rows, half, n, args.batch)
        print(f"ingestion of {n:,} events over {args.days} days, {args.batch} per transaction: "
              f"partitioned {n / parted:,.0f} events/s, unpartitioned {n / flat:,.0f} events/s", flush=True)
        fill(engine, site, start_ms=first_day * DAY_MS, end_ms=now, events=0, served=max(n // 10, 1))  # + ANALYZE
        with engine.begin() as conn:
            conn.execute(text("ANALYZE events_flat"))
        print(f"admin overview query plans ({n:,} events, {max(n // 10, 1):,} served lists):", flush=True)
        overview_plans(engine, site)
        cutoff = (first_day + 1) * DAY_MS
        (dropped, dropped_n), drop_s, drop_worst, drop_k = Writer(engine, "events", site).during(
            lambda: drop_partitions_before(engine, cutoff))
        deleted, delete_s, delete_worst, delete_k = Writer(engine, "events_flat", site).during(
            lambda: delete_chunks(engine, cutoff))
        print(f"retention of the oldest day: dropping its partition ({dropped_n:,} events, {dropped}) "
              f"{drop_s * 1000:.0f} ms, a writer's slowest 100-event insert meanwhile {drop_worst:.0f} ms "
              f"({drop_k} inserts); deleting its {deleted:,} rows in chunks of 20,000 from the unpartitioned table "
              f"{delete_s:.2f} s, slowest insert meanwhile {delete_worst:.0f} ms ({delete_k} inserts)", flush=True)
        tracemalloc.start()
        t0 = time.perf_counter()
        data_out = export_sessions(engine, site, max_events_per_second=None)
        export_s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"training export: {data_out.n_events:,} events in {data_out.n_sessions:,} sessions, {export_s:.1f} s, "
              f"peak Python memory {peak / 2**20:.0f} MiB; the bench's peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
        engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
