"""Training speed (issue 3): events/s in the training loop, median of 3 runs, the plain torch-autograd reference
step against the fused fast step in the same run (alternating, so both see the same machine load).

    .venv/bin/python tests/bench/bench_train.py [--reps 3] [--only rsc15|diginetica] [--steps N]
                                                [--reference-threads N]

rsc15: the issue's fidelity setting on rsc15-100k, one full epoch per run (52,484 events).
diginetica: the Diginetica preset (layers 512, batch 128, 2048 samples) on diginetica-srgnn, the first
``--steps`` steps (default 300 = 38,400 events) of an epoch per run. Events = training pairs (input -> next item).
The reference step runs with torch's default threads (or --reference-threads: on a busy machine torch's
spinning OpenMP threads collapse to a few hundred events/s); the fast one picks its BLAS threads by measuring.
Figures depend on what else runs: the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.gru4rec.data import read_sessions  # noqa: E402
from backend.gru4rec.params import parse_params  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
FIDELITY = ("loss=cross-entropy,constrained_embedding=True,layers=100,batch_size=32,dropout_p_embed=0.1,"
            "dropout_p_hidden=0.0,learning_rate=0.1,momentum=0.0,n_sample=2048,sample_alpha=0.75,logq=1.0,"
            "n_epochs=1")
SETTINGS = {
    "rsc15": ("rsc15-100k-sessionrec/yoochoose-clicks-100k_train_full.txt", FIDELITY, None, 20_000),
    "diginetica": ("diginetica-srgnn/train_sessions.txt", "diginetica,n_epochs=1", 300, 5_000),
}


def measure(name: str, reps: int, steps: int | None) -> None:
    path, params_text, default_steps, target = SETTINGS[name]
    data_path = SHARED / path
    if not data_path.exists():
        print(f"{name}: skipped, dataset not available: {data_path} (see ../shared/data/README.md)")
        return
    data = read_sessions(data_path)
    params = parse_params(params_text)
    steps = steps or default_steps
    for impl in ("fast", "reference"):      # warm up: JIT caches, torch's first calls
        train(data, params, impl=impl, max_steps=10)
    rates: dict[str, list[float]] = {"reference": [], "fast": []}
    threads = []
    for rep in range(reps):
        for impl in ("reference", "fast"):
            t0 = time.perf_counter()
            result = train(data, params, impl=impl, max_steps=steps)
            rates[impl].append(result.events_per_second)
            if impl == "fast":
                threads.append(sorted({t for t, _ in result.thread_probes}) or "fixed")
            print(f"  {name} run {rep + 1}/{reps} {impl:9s} {result.events_per_second:10,.0f} events/s "
                  f"({result.pairs_per_epoch:,} events, {time.perf_counter() - t0:.1f} s)", flush=True)
    ref, fast = statistics.median(rates["reference"]), statistics.median(rates["fast"])
    print(f"{name:10s} reference {ref:10,.0f} events/s | fast {fast:10,.0f} events/s | x{fast / ref:.2f} | "
          f"target {target:,}: {'met' if fast >= target else 'NOT met'} (median of {reps})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=list(SETTINGS))
    ap.add_argument("--steps", type=int, help="steps per run (default: a full epoch for rsc15, 300 for diginetica)")
    ap.add_argument("--reference-threads", type=int, help="torch threads of the reference step (default: torch's)")
    args = ap.parse_args()
    if args.reference_threads:
        import torch

        torch.set_num_threads(args.reference_threads)
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}  (cores: {len(os.sched_getaffinity(0))}, "
          f"load average {os.getloadavg()[0]:.2f})")
    for name in [args.only] if args.only else SETTINGS:
        measure(name, args.reps, args.steps)
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
