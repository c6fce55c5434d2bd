"""End-to-end HTTP throughput of one core (issue 16, the README's sizing guide): a real `upnext serve`, one worker
process pinned to CPU 0 (`taskset -c 0`), PostgreSQL and the load generator pinned to CPU 1. For each catalogue
size (--items, default 43,000 and 1,000,000) a site gets a GRU4Rec model of that many items (the default first
model's preset, `diginetica`: hidden layer 512, trained for 2 steps on synthetic sessions over every item: the
weights' values do not change the work a request does) with its item-kNN and popularity parts, and a catalogue of
those items. The load generator keeps keep-alive connections busy (closed loop: each sends its next request as
soon as the last is answered), for --seconds per measurement:

- recommendations: GET /v1/recommendations (placement product-page, 8 items) of visitors walking 8-page sessions,
  the history (up to 20 items) in the request, as the widget sends it;
  from --connections connections, and from one (its latency has no queueing in it);
- events: POST /v1/events with one view each, from --event-connections connections (each reply waits for the
  group commit to PostgreSQL, so a few connections cannot keep the server busy).

The three alternate, --repeats times; each figure is the median of the repeats. Besides requests/s and p50/p99
latency (under saturating load they include queueing), it reports the CPU seconds the server process
used per request: on a machine shared with other work the server may not get all of its core, and
requests / server CPU second is then the rate one whole core would give.

    nice -n 10 .venv/bin/python tests/bench/bench_http.py [--items 43000,1000000] [--seconds 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.gru4rec.params import parse_params  # noqa: E402
from backend.publishing import publish_artifact  # noqa: E402
from backend.session_data import SessionData  # noqa: E402
from backend.simulation.server import ServerProcess  # noqa: E402
from backend.store.db import make_engine, migrate  # noqa: E402
from backend.store.items import clean_item, upsert_items  # noqa: E402
from backend.store.sites import create_site  # noqa: E402
from backend.training import train_bundle  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.recload import Connection  # noqa: E402

SERVER_CPU, LOAD_CPU = 0, 1
NO_LIMITS = {"UPNEXT_RATE_KEY_RECOMMENDATIONS": "1e9", "UPNEXT_RATE_KEY_EVENTS": "1e9",
             "UPNEXT_RATE_SESSION_EVENTS": "1e9"}   # the load comes from one key: measure, do not limit


def build_model(out: Path, n_items: int, params: str) -> list[str]:
    """A bundle over n_items items (every item in some session); returns the item ids."""
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.permutation(n_items), rng.zipf(1.3, n_items) % n_items]).astype(np.int32)
    n_sessions = len(items) // 5
    ids = [f"i{k}" for k in range(n_items)]
    data = SessionData(np.array(ids, dtype=object), items[:n_sessions * 5],
                       np.arange(n_sessions + 1, dtype=np.int64) * 5, np.arange(n_sessions, dtype=np.float64))
    t0 = time.perf_counter()
    train_bundle(data, parse_params(params), out, max_steps=2)
    print(f"  model of {n_items:,} items ({params}) built in {time.perf_counter() - t0:.0f} s", flush=True)
    return ids


def make_site(url: str, name: str, model: Path, ids: list[str], model_dir: Path) -> str:
    engine = make_engine(url)
    keys = create_site(engine, name, ["http://127.0.0.1"])
    for lo in range(0, len(ids), 50_000):
        with engine.begin() as conn:
            upsert_items(conn, keys.site_id, [clean_item({"id": i, "title": f"Item {i}", "url": f"/p/{i}",
                                                          "price": 10.0, "currency": "EUR"})
                                              for i in ids[lo:lo + 50_000]])
    publish_artifact(engine, keys.site_id, model, model_dir=model_dir)
    engine.dispose()
    return keys.publishable_key


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every process in process group ``pgid`` (the server and its workers)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def load(port: int, key: str, ids: list[str], kind: str, seconds: float, connections: int,
               seed: int) -> dict:
    """``connections`` closed loops for ``seconds``; returns requests/s, p50/p99 ms and errors."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors, failed = 0, {}        # failed: what the errors were (a status, or the exception's name), how often
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal errors
        conn = Connection("127.0.0.1", port)
        session, history = secrets.token_urlsafe(16), []
        while time.perf_counter() < stop:
            if len(history) >= 8:
                session, history = secrets.token_urlsafe(16), []
            item = ids[rng.randrange(len(ids))]
            if kind == "events":
                body = json.dumps({"key": key, "session": session,
                                   "events": [{"type": "view", "item": item}]}).encode()
                head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n")
                ok = 202
            else:
                body = b""
                head = (f"GET /v1/recommendations?key={key}&placement=product-page&session={session}"
                        f"&item={quote(item)}&n=8&history={quote(','.join(history[-20:]))} HTTP/1.1\r\n"
                        f"Host: x\r\n\r\n")
                ok = 200
            history.append(item)
            t0 = time.perf_counter()
            try:
                status = await conn.request(head, body)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                errors += 1
                failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                continue
            if status == ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
                failed[str(status)] = failed.get(str(status), 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    pct = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    return {"n": len(lat), "rate": len(lat) / elapsed, "p50": pct(0.5), "p99": pct(0.99), "errors": errors,
            "failed": failed}


def measure(server: ServerProcess, key: str, ids: list[str], args) -> dict[str, list[dict]]:
    """Each run of the repeats, in a rotating order: recommendations and events under saturating load, and
    recommendations from one connection (latency without queueing)."""
    runs = [("recommendations", "recommendations", args.connections),
            ("events", "events", args.event_connections), ("one connection", "recommendations", 1)]
    out: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    asyncio.run(load(server.port, key, ids, "recommendations", 3, args.connections, 99))   # warm the caches
    for r in range(args.repeats):
        for name, kind, connections in runs[r % 3:] + runs[:r % 3]:
            cpu0 = cpu_seconds(server.proc.pid)
            res = asyncio.run(load(server.port, key, ids, kind, args.seconds, connections, r))
            res["cpu_per_request_ms"] = 1000 * (cpu_seconds(server.proc.pid) - cpu0) / max(res["n"], 1)
            out[name].append(res)
            print(f"    {name} ({connections} connections): {res['rate']:,.0f}/s, p50 {res['p50']:.1f} ms, p99 "
                  f"{res['p99']:.1f} ms, server CPU {res['cpu_per_request_ms']:.2f} ms a request, errors "
                  f"{res['errors']} {res['failed'] or ''}", flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", default="43000,1000000")
    p.add_argument("--params", default="diginetica", help="the model's preset/parameters (its layers count)")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--connections", type=int, default=8, help="for recommendations")
    p.add_argument("--event-connections", type=int, default=64, help="for events (each waits for its commit)")
    args = p.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        print("skipped: needs two CPUs (one for the server, one for the load)")
        return 0
    os.sched_setaffinity(0, {LOAD_CPU})
    try:
        import uvloop   # the load generator should not be the bottleneck
        uvloop.install()
    except ImportError:
        pass
    summary = []
    with tempfile.TemporaryDirectory(prefix="upnext-bench-http-") as tmp, PostgresServer() as pg:
        tmp = Path(tmp)
        for pid in pg.pids():                 # the postmaster: backends started later inherit its CPU
            os.sched_setaffinity(pid, {LOAD_CPU})
        url = pg.create_database("bench_http")
        migrate(url)
        sites = []
        for n in (int(s) for s in args.items.split(",")):
            ids = build_model(tmp / f"model{n}", n, args.params)
            sites.append((n, make_site(url, f"items{n}", tmp / f"model{n}", ids, tmp / "models"), ids))
        program = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "backend"]
        kw = dict(workers=1, program=program, env=NO_LIMITS, log_path=tmp / "server.log", data_dir=tmp / "data")
        # the first start compiles and caches the kernels (minutes on a busy core); the measured server starts warm
        with ServerProcess(url, **kw).start(timeout=900):
            pass
        with ServerProcess(url, **kw).start(timeout=900) as server:
            for n, key, ids in sites:
                print(f"  {n:,} items, {args.seconds:g} s each, {args.repeats} repeats:", flush=True)
                res = measure(server, key, ids, args)
                summary.append((n, {k: {m: statistics.median(r[m] for r in v) for m in v[0] if m != "failed"}
                                    for k, v in res.items()}))
    print(f"one server process on one core ({args.params}; medians of {args.repeats} runs of {args.seconds:g} s; "
          f"recommendations from {args.connections} connections, events from {args.event_connections}):")
    for n, r in summary:
        rec, ev, one = r["recommendations"], r["events"], r["one connection"]
        print(f"  {n:>9,} items: recommendations {rec['rate']:,.0f}/s (p50 {rec['p50']:.1f} ms, p99 "
              f"{rec['p99']:.1f} ms; {1000 / rec['cpu_per_request_ms']:,.0f}/s per server CPU second; from one "
              f"connection p50 {one['p50']:.1f} ms, p99 {one['p99']:.1f} ms), events {ev['rate']:,.0f}/s (p50 "
              f"{ev['p50']:.1f} ms, p99 {ev['p99']:.1f} ms; {1000 / ev['cpu_per_request_ms']:,.0f}/s per server "
              f"CPU second); errors {rec['errors'] + one['errors']:.0f} and {ev['errors']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
