"""GPU training (issue 8): one epoch on diginetica-srgnn with (i) plain PyTorch on the GPU (the torch-autograd
reference step, impl=reference) and (ii) the Numba-CUDA path (impl=fast: full-batch steps replayed as a CUDA
graph; "eager" is the same path launching its kernels one by one), for the Diginetica preset and for
layers=100,batch_size=32; mini-batches/s and events/s in the training loop, Recall@20 and MRR@20 after the epoch
(full ranking of the test sessions, conservative ties).

    python tests/bench/bench_gpu_train.py [--only l100b32|diginetica] [--impl fast|eager|reference] [--max-steps N]

Targets: (ii) at least 1,500 mini-batches/s at layers=100, batch 32; the same accuracy for (i) and (ii) (their
random numbers differ: (i) draws on the CPU, (ii) on the GPU, so Recall@20 differs by noise only).
Without a GPU it says so and exits 0. The data is read from $UPNEXT_SHARED_DATA/diginetica-srgnn (default
../shared/data); tests/bench/gpu_check.sh points it at the copy it carries to the GPU machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
DATA = "diginetica-srgnn"
SETTINGS = {   # the target setting first, and the Numba-CUDA path before the slow baseline: what a time limit cuts
    "l100b32": "layers=100,batch_size=32,n_epochs=1",
    "diginetica": "diginetica,n_epochs=1",
}
IMPLS = {"fast": "(ii) Numba-CUDA", "eager": "(ii) same, no CUDA graph", "reference": "(i) plain PyTorch, GPU"}
TARGET_L100B32 = 1500


def versions() -> str:
    import numba
    import torch

    try:
        from importlib.metadata import version

        numba_cuda = version("numba-cuda")
    except Exception:          # noqa: BLE001
        numba_cuda = "?"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}), numba {numba.__version__}, "
            f"numba-cuda {numba_cuda}")


def run(name: str, impl: str, data, test, max_steps: int | None) -> dict:
    from backend.gru4rec.params import parse_params
    from backend.gru4rec.trainer import train
    from backend.training import evaluate_bundle_parts

    params = parse_params(SETTINGS[name])
    t0 = time.perf_counter()
    result = train(data, params, impl="fast" if impl == "eager" else impl, device="cuda", max_steps=max_steps,
                   cuda_graphs=impl == "fast")
    train_wall = time.perf_counter() - t0
    seconds = result.epoch_seconds[0]
    metrics = evaluate_bundle_parts(result.weights, data.item_ids, test)
    row = {"setting": name, "impl": impl, "steps": result.steps_per_epoch, "seconds": seconds,
           "batches_per_s": result.steps_per_epoch / seconds, "events_per_s": result.pairs_per_epoch / seconds,
           "recall20": metrics["recall@20"], "mrr20": metrics["mrr@20"], "loss": result.epoch_loss[0],
           "wall": time.perf_counter() - t0, "train_wall": train_wall, "graph": result.cuda_graph}
    print(f"{name:10s} {IMPLS[impl]:24s} {row['batches_per_s']:9,.0f} mini-batches/s {row['events_per_s']:11,.0f} "
          f"events/s  Recall@20 {row['recall20']:.4f}  MRR@20 {row['mrr20']:.4f}  loss {row['loss']:.4f}  "
          f"({row['steps']:,} steps in {seconds:.1f} s; {row['wall']:.0f} s with set-up and evaluation)"
          + (f"; CUDA graph {row['graph']}" if impl == "fast" else ""),
          flush=True)
    return row


def attempt(fn, what: str):
    """fn(), or None with the error printed: one failing variant must not cost the others' figures (the GPU
    machine is lent for one run)."""
    try:
        return fn()
    except Exception as exc:        # noqa: BLE001
        print(f"FAILED {what}: {type(exc).__name__}: {exc}", flush=True)
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(SETTINGS))
    ap.add_argument("--impl", choices=list(IMPLS))
    ap.add_argument("--max-steps", type=int, help="steps per epoch (default: the whole epoch)")
    args = ap.parse_args()
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    from backend.gru4rec.device import cuda_unavailable

    why = cuda_unavailable("fast")
    if why:
        print(f"skipped: the GPU path cannot run here: {why}")
        return 0
    train_path, test_path = SHARED / DATA / "train_sessions.txt", SHARED / DATA / "test_sessions.txt"
    if not train_path.exists():
        print(f"skipped, dataset not available: {train_path} (see ../shared/data/README.md; on the GPU machine "
              f"tests/bench/gpu_check.sh prepare copies it)")
        return 0
    print(f"# {versions()}", flush=True)
    from backend.gru4rec.data import read_sessions
    from backend.gru4rec.params import parse_params
    from backend.gru4rec.trainer import train

    data, test = read_sessions(train_path), read_sessions(test_path)
    settings = [args.only] if args.only else list(SETTINGS)
    impls = [args.impl] if args.impl else list(IMPLS)
    t0 = time.perf_counter()
    for name in settings:                    # warm up: kernel compilation, cuBLAS, torch's first calls
        for impl in impls:
            attempt(lambda: train(data, parse_params(SETTINGS[name]), impl="fast" if impl == "eager" else impl,
                                  device="cuda", max_steps=20, cuda_graphs=impl == "fast"), f"warm-up {name} {impl}")
    print(f"# warm-up (compiling the kernels) {time.perf_counter() - t0:.1f} s", flush=True)
    rows = [attempt(lambda: run(name, impl, data, test, args.max_steps), f"{name} {impl}")
            for name in settings for impl in impls]
    rows = [r for r in rows if r is not None]

    print("# summary")
    for name in settings:
        by_impl = {r["impl"]: r for r in rows if r["setting"] == name}
        if "reference" in by_impl and "fast" in by_impl:
            ref, fast = by_impl["reference"], by_impl["fast"]
            print(f"{name:10s} Numba-CUDA x{fast['batches_per_s'] / ref['batches_per_s']:.1f} mini-batches/s of "
                  f"plain PyTorch; Recall@20 {fast['recall20']:.4f} vs {ref['recall20']:.4f} "
                  f"(difference {fast['recall20'] - ref['recall20']:+.4f})")
        if name == "l100b32" and "fast" in by_impl:
            rate = by_impl["fast"]["batches_per_s"]
            verdict = "met" if rate >= TARGET_L100B32 else "NOT met"
            print(f"{name:10s} target {TARGET_L100B32:,} mini-batches/s: {verdict} ({rate:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
