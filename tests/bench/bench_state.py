"""Session state memory: one million active sessions at layers 100 within the configured budget.

Fills a SessionStateCache with N sessions (22-character ids, as the widget makes them, each with a state and a
history) and reports: sessions held, the cache's own byte count, the bytes actually allocated (tracemalloc, which
sees numpy's buffers too) and the process's resident memory growth, against the budget; then the cost of a
lookup and of a store. Run twice: with a budget sized for N sessions and with the default UPNEXT_STATE_MB.

Run: .venv/bin/python tests/bench/bench_state.py [--sessions 1000000] [--layers 100] [--budget-mb 800]
"""
from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.serving.state import SessionStateCache  # noqa: E402
from backend.settings import Settings  # noqa: E402

MiB = 1 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def fill(n_sessions: int, layers: int, budget_mb: int, traced: bool) -> dict:
    """Put n_sessions into a fresh cache; with ``traced``, count allocations with tracemalloc (slower)."""
    rss0 = rss_bytes()
    if traced:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if traced else 0
    cache = SessionStateCache(layers, budget_mb * MiB)
    state = np.random.default_rng(0).standard_normal(layers).astype(np.float32)
    history = np.arange(5, dtype=np.int64)
    sample = []
    t0 = time.perf_counter()
    for n in range(n_sessions):
        sid = secrets.token_urlsafe(16)
        cache.put(sid, state, history, 5)
        if n % 997 == 0:
            sample.append(sid)
    out = {"put_fill_us": (time.perf_counter() - t0) / n_sessions * 1e6, "held": len(cache),
           "capacity": cache.capacity, "counted": cache.bytes_used,
           "rss": rss_bytes() - rss0 - sys.getsizeof(sample) - 80 * len(sample)}
    if traced:
        out["traced"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return out
    held = [sid for sid in sample if sid in cache]
    t0 = time.perf_counter()
    for sid in held:
        cache.get(sid)
    out["get_us"] = (time.perf_counter() - t0) / max(1, len(held)) * 1e6
    return out


def child(args) -> None:
    print(json.dumps(fill(args.sessions, args.layers, args.budget_mb, args.child == "traced")))


def measure(args, budget_mb: int) -> None:
    runs = {}
    for mode in ("rss", "traced"):  # each in a fresh process: resident memory is not reused from a run before
        cmd = [sys.executable, __file__, "--sessions", str(args.sessions), "--layers", str(args.layers),
               "--budget-mb", str(budget_mb), "--child", mode]
        runs[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    r, t = runs["rss"], runs["traced"]
    budget = budget_mb * MiB
    ok = max(t["traced"], r["counted"], r["rss"]) <= budget
    print(f"{args.sessions:,} | {args.layers} | {budget_mb} | {r['held']:,} | {r['capacity']:,} | "
          f"{r['counted'] / MiB:.1f} | {t['traced'] / MiB:.1f} | {r['rss'] / MiB:.1f} | "
          f"{t['traced'] / max(1, t['held']):.0f} | {r['put_fill_us']:.1f} | {r['get_us']:.1f} | "
          f"{'yes' if ok else 'NO'}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--layers", type=int, default=100, help="state size S (sum of the GRU layer sizes)")
    p.add_argument("--budget-mb", type=int, default=800, help="a budget sized for --sessions")
    p.add_argument("--child", choices=("rss", "traced"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    default_mb = Settings.from_env({}).state_mb
    print(f"# bench_state; command: .venv/bin/python tests/bench/bench_state.py --sessions {args.sessions} "
          f"--layers {args.layers} --budget-mb {args.budget_mb}")
    print("sessions put | S | budget MiB | held | capacity | counted MiB | allocated MiB (tracemalloc) | "
          "RSS growth MiB | allocated B/session | put us | get us | within budget")
    measure(args, args.budget_mb)
    measure(args, default_mb)


if __name__ == "__main__":
    main()
