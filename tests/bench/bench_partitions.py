"""PostgreSQL at volume (issue 16, part 4), on top of --events rows: ingestion through the server's insert path
into the day-partitioned events table against an unpartitioned copy (same run, same server, same rows, same
indexes), retention of the oldest day (dropping its partition against deleting its rows in chunks, each while a
writer keeps inserting: its slowest insert says whether retention blocks ingestion), the training export's time
and peak memory (in a child process of its own, so that its peak RSS is the export's), and the plans of the admin
overview's queries (which partitions they read, and how).

The --events rows are made by the server itself (``INSERT ... SELECT ... FROM generate_series``), one day-sized
chunk at a time into each table in turn, so 50M rows take minutes, not hours. They are spread evenly over the
last --days days up to now, in sessions of 8 view events (10,000 sessions open at a time, so a session's events
are minutes apart and sessions interleave), over 50,000 items with a Zipf-like popularity (item i has
probability ~ 1/i: log-uniform). Then --live events of sessions happening now are inserted the way the server's
event writer does (``insert(events)`` with a list of rows, one transaction per --batch rows), batch by batch in
turns (A B B A) so that load from other processes falls on both tables alike.

    .venv/bin/python tests/bench/bench_partitions.py [--events 1000000] [--days 10] [--live 100000] [--batch 5000]
    nice -n 10 .venv/bin/python tests/bench/bench_partitions.py --events 50000000 --live 400000   # the issue's size

The throwaway PostgreSQL runs with fsync off (tests/support/postgres.py); the database is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import MetaData, insert, text  # noqa: E402

from backend.store import traffic  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.export import export_sessions  # noqa: E402
from backend.store.partitions import DAY_MS, drop_partitions_before, ensure_partitions  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.store.tables import Event  # noqa: E402
from tests.support.plans import describe, explain, fill, holding_rows, recorded  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

INDEXES = {"rec": "rec", "received": "received_ms", "site_session": "site_id, session, received_ms",
           "site_type_session": "site_id, type, session, client_ms"}
OPEN_SESSIONS, SESSION_EVENTS, N_ITEMS = 10_000, 8, 50_000
# event k of n: time start + k * span / n; session (k / 80,000) * 10,000 + k % 10,000 (its 8 events are 10,000
# events apart); item floor(exp(u * ln 50,000)) with u uniform in [0, 1) from a multiplicative hash of k, so both
# tables get the very same rows
FILL_SQL = (
    "INSERT INTO {table} (site_id, session, type, item, client_ms, received_ms) "
    "SELECT %(s)s, 's' || lpad(((k / {block}) * {open} + k %% {open})::text, 21, '0'), 'view', "
    "'I' || floor(exp(((k * 2654435761) %% 4294967296)::float8 / 4294967296.0 * ln({items}::float8)))::int, t, t "
    "FROM (SELECT k, %(a)s::bigint + k * %(span)s::bigint / %(n)s::bigint AS t "
    "FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) k) x").format
EVENTS = Event.__table__
FLAT = EVENTS.to_metadata(MetaData(), name="events_flat")


def bulk_fill(engine, site: int, n: int, start_ms: int, end_ms: int, days: int) -> None:
    """n rows into each table with server-side SQL, one chunk (a day's share) per statement, tables in turn."""
    bounds = [n * d // days for d in range(days + 1)]
    spent = {"events": 0.0, "events_flat": 0.0}
    for d in range(days):
        order = ["events_flat", "events"] if d % 2 == 0 else ["events", "events_flat"]
        for table in order:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql(FILL_SQL(table=table, block=OPEN_SESSIONS * SESSION_EVENTS,
                                              open=OPEN_SESSIONS, items=N_ITEMS),
                                     {"s": site, "a": start_ms, "span": end_ms - start_ms, "n": n,
                                      "lo": bounds[d], "hi": bounds[d + 1]})
            spent[table] += time.perf_counter() - t0
        print(f"  fill: chunk {d + 1}/{days} ({bounds[d + 1]:,} rows in each table); server-side insert rate "
              f"so far: partitioned {bounds[d + 1] / spent['events']:,.0f} rows/s, unpartitioned "
              f"{bounds[d + 1] / spent['events_flat']:,.0f} rows/s", flush=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE events")
        conn.exec_driver_sql("ANALYZE events_flat")


def live_rows(site: int, lo: int, hi: int, now: int) -> list[dict]:
    """Events lo..hi of sessions happening now (8 events each, interleaved), one millisecond apart."""
    return [{"site_id": site, "session": f"live{(k // 80_000) * 10_000 + k % 10_000:019d}", "type": "view",
             "item": f"I{(k * 7919) % N_ITEMS}", "client_ms": now + k, "received_ms": now + k}
            for k in range(lo, hi)]


def app_ingest(engine, site: int, n: int, batch: int) -> dict[str, float]:
    """Seconds each table took to take the same n live events, one transaction per batch (the server's event
    writer: ``conn.execute(insert(table), rows)``), the tables in turns A B B A."""
    spent = {"events": 0.0, "events_flat": 0.0}
    now = time.time_ns() // 1_000_000
    for i, lo in enumerate(range(0, n, batch)):
        rows = live_rows(site, lo, min(lo + batch, n), now)
        for table in ((EVENTS, FLAT) if i % 2 == 0 else (FLAT, EVENTS)):
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(insert(table), rows)
            spent[table.name] += time.perf_counter() - t0
    return spent


class Writer(threading.Thread):
    """Inserts 100-event batches of today into ``table`` until stopped; records each batch's latency."""

    def __init__(self, engine, table, site: int):
        super().__init__(daemon=True)
        self.engine, self.table, self.site = engine, table, site
        self.stop, self.latencies = threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.time_ns() // 1_000_000
            rows = [{"site_id": self.site, "session": "swriterwriterwriter0001", "type": "view", "item": "I1",
                     "client_ms": now, "received_ms": now}] * 100
            t0 = time.perf_counter()
            with self.engine.begin() as conn:
                conn.execute(insert(self.table), rows)
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
              f"sequential scans of tables with rows: {seq or 'none'}", flush=True)


def export_child(url: str, site: int) -> None:
    """The training export as the trainer calls it (every retained event of the site); prints one JSON line."""
    engine = make_engine(url, statement_timeout_s=3600 * 6)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    data = export_sessions(engine, site)
    seconds = time.perf_counter() - t0
    print(json.dumps({"events": data.n_events, "sessions": data.n_sessions, "items": data.n_items,
                      "seconds": seconds, "base_rss_mib": base / 2**10,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
                      "result_mib": (data.items.nbytes + data.offsets.nbytes + data.start_times.nbytes) / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--live", type=int, default=100_000, help="events ingested through the app path, per table")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--export-child", nargs=2, metavar=("URL", "SITE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export_child:
        export_child(args.export_child[0], int(args.export_child[1]))
        return
    free_gb = shutil.disk_usage("/tmp").free / 1e9
    need_gb = args.events * 2 * 300 / 1e9 + 5     # two tables, ~300 bytes a row with indexes, WAL, sort space
    print(f"free disk {free_gb:.0f} GB, this run needs about {need_gb:.0f} GB", flush=True)
    if free_gb < need_gb:
        sys.exit("not enough free disk")
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
        n = args.events
        t0 = time.perf_counter()
        bulk_fill(engine, site, n, first_day * DAY_MS, now, args.days)
        with engine.connect() as conn:
            size = {"events_flat": conn.execute(text("SELECT pg_total_relation_size('events_flat')")).scalar(),
                    "events": conn.execute(text("SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM "
                                                "pg_inherits WHERE inhparent = 'events'::regclass")).scalar()}
        print(f"filled {n:,} events into each table over {args.days} days in {time.perf_counter() - t0:.0f} s; "
              f"on disk with indexes: partitioned {size['events'] / 1e9:.1f} GB, unpartitioned "
              f"{size['events_flat'] / 1e9:.1f} GB", flush=True)
        spent = app_ingest(engine, site, args.live, args.batch)
        print(f"ingestion on top of {n:,} events, {args.live:,} live events into each table through the server's "
              f"insert path, {args.batch} per transaction, in turns: partitioned {args.live / spent['events']:,.0f} "
              f"events/s, unpartitioned {args.live / spent['events_flat']:,.0f} events/s", flush=True)
        served = max(n // 10, 1)
        fill(engine, site, start_ms=first_day * DAY_MS, end_ms=now, events=0, served=served)  # + ANALYZE
        with engine.begin() as conn:
            conn.execute(text("ANALYZE events_flat"))
        print(f"admin overview query plans ({n + args.live:,} events, {served:,} served lists):", flush=True)
        overview_plans(engine, site)
        cutoff = (first_day + 1) * DAY_MS
        (dropped, dropped_n), drop_s, drop_worst, drop_k = Writer(engine, EVENTS, site).during(
            lambda: drop_partitions_before(engine, cutoff))
        deleted, delete_s, delete_worst, delete_k = Writer(engine, FLAT, site).during(
            lambda: delete_chunks(engine, cutoff))
        print(f"retention of the oldest day: dropping its partition ({dropped_n:,} events, {dropped}) "
              f"{drop_s * 1000:.0f} ms, a writer's slowest 100-event insert meanwhile {drop_worst:.0f} ms "
              f"({drop_k} inserts); deleting its {deleted:,} rows in chunks of 20,000 from the unpartitioned table "
              f"{delete_s:.1f} s, slowest insert meanwhile {delete_worst:.0f} ms ({delete_k} inserts)", flush=True)
        engine.dispose()
        r = json.loads(subprocess.run([sys.executable, __file__, "--export-child", url, str(site)], check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"training export (every retained event of the site, in a process of its own): {r['events']:,} "
              f"events in {r['sessions']:,} sessions, {r['items']:,} items, {r['seconds']:.1f} s; peak RSS "
              f"{r['peak_rss_mib']:.0f} MiB (the process before the export: {r['base_rss_mib']:.0f} MiB; the result's "
              f"arrays: {r['result_mib']:.0f} MiB)", flush=True)
    finally:
        pg.stop()
        print("database removed", flush=True)


if __name__ == "__main__":
    main()
