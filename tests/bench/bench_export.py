"""Training export benchmark (issue 2): events in the store -> SessionData arrays, on a few million events.

    .venv/bin/python tests/bench/bench_export.py [--events 3000000] [--only sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.export import export_sessions  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from tests.support.postgres import PostgresServer, PostgresUnavailable  # noqa: E402


def synthetic_events(n_events: int, n_items: int = 50_000, seed: int = 0):
    """Sessions of 1-20 events over a Zipf-like catalogue, interleaved in time like real traffic."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 21, size=n_events // 5)
    lengths = lengths[np.cumsum(lengths) <= n_events]
    n = int(lengths.sum())
    session = np.repeat(np.arange(len(lengths)), lengths)
    items = (rng.zipf(1.3, size=n) % n_items).astype(np.int64)
    start = np.repeat(np.arange(len(lengths)) * 1000, lengths)
    pos = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    t = 1_700_000_000_000 + start + pos * 30_000
    return session, items, t


def fill_sqlite(url: str, site_id: int, session, items, t) -> None:
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("PRAGMA synchronous=OFF")
    rows = ((site_id, f"s{s:012d}", "view", f"I{i}", int(ts), int(ts)) for s, i, ts in zip(session, items, t))
    conn.executemany("INSERT INTO events (site_id, session, type, item, client_ms, received_ms) "
                     "VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def fill_postgres(url: str, site_id: int, session, items, t) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY events (site_id, session, type, item, client_ms, received_ms) FROM STDIN") as copy:
            buf = io.StringIO()
            for k, (s, i, ts) in enumerate(zip(session, items, t)):
                buf.write(f"{site_id}\ts{s:012d}\tview\tI{i}\t{ts}\t{ts}\n")
                if k % 200_000 == 199_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        cur.execute("ANALYZE events")


def bench(name: str, url: str, n_events: int, fill) -> None:
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "bench", []).site_id
    session, items, t = synthetic_events(n_events)
    t0 = time.perf_counter()
    fill(url, site, session, items, t)
    print(f"{name:<11} loaded {len(items):,} events in {time.perf_counter() - t0:.1f} s", flush=True)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        data = export_sessions(engine, site)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    print(f"{name:<11} export: {data.n_events:,} events, {data.n_sessions:,} sessions, {data.n_items:,} items "
          f"in {med:.2f} s (median of 3) = {len(items) / med:,.0f} stored events/s", flush=True)
    engine.dispose()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3_000_000)
    p.add_argument("--only", choices=("sqlite", "postgresql"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="upnext-bench-") as tmp:
        if args.only in (None, "sqlite"):
            bench("sqlite", f"sqlite:///{Path(tmp) / 'export.db'}", args.events, fill_sqlite)
        if args.only in (None, "postgresql"):
            try:
                with PostgresServer() as pg:
                    bench("postgresql", pg.create_database("export"), args.events, fill_postgres)
            except PostgresUnavailable as exc:
                print(f"postgresql  skipped: {exc}")
    print(f"reproduce: .venv/bin/python tests/bench/bench_export.py --events {args.events}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
