"""Traffic simulator benchmark (issue 7): per-arm clicks per 1,000 recommendation requests with 95% intervals,
replaying held-out real sessions through a real server running an A/B experiment (popular, item-kNN, GRU4Rec).

    .venv/bin/python tests/bench/bench_simulate.py                      # rsc15-100k, rsc15 preset (a few minutes)
    .venv/bin/python tests/bench/bench_simulate.py --dataset yoochoose1_64 [--model DIR] [--sessions N]

yoochoose1_64 trains the yoochoose preset (about 30 min on 2 cores) unless --model names a bundle that
`upnext train --data .../train_sessions.txt --params yoochoose --out DIR` wrote.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.commands.simulate import summary  # noqa: E402
from backend.simulation.simulator import SimulationConfig, run_simulation  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS = {
    "rsc15-100k": ("rsc15-100k-sessionrec/yoochoose-clicks-100k_train_full.txt",
                   "rsc15-100k-sessionrec/yoochoose-clicks-100k_test.txt", "rsc15"),
    "yoochoose1_64": ("yoochoose1_64-srgnn/train_sessions.txt", "yoochoose1_64-srgnn/test_sessions.txt",
                      "yoochoose"),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="rsc15-100k")
    p.add_argument("--model", type=Path, help="a trained bundle to publish instead of training")
    p.add_argument("--params", help="GRU4Rec parameters (default: the dataset's preset)")
    p.add_argument("--sessions", type=int, help="a random sample of test sessions (default: all)")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--keep-seen", action="store_true")
    args = p.parse_args()
    train, test, preset = DATASETS[args.dataset]
    train, test = SHARED / train, SHARED / test
    if not train.exists():
        print(f"dataset not available: {train} (see ../shared/data/README.md)")
        return 0
    cfg = SimulationConfig(train=train, test=test, arms=["popular", "item-knn", "gru4rec"],
                           params=args.params or preset, sessions=args.sessions, n=args.n, model=args.model,
                           exclude_seen=not args.keep_seen)
    out = summary(run_simulation(cfg, say=lambda m: print(m, file=sys.stderr, flush=True)))
    sim = out["simulation"]
    print(f"{args.dataset}: {sim['sessions']:,} test sessions, lists of {sim['n']}, "
          f"{'seen items shown' if not sim['exclude_seen'] else 'seen items left out'}; GRU4Rec {cfg.params}"
          f"{' (given bundle)' if args.model else ''}; set-up {sim['timings']['setup_s']} s, "
          f"replay {sim['timings']['replay_s']} s")
    print(f"{'arm':<10} {'sessions':>9} {'requests':>9}  clicks/1000 [95% interval]   uplift vs popular")
    for name, arm in out["arms"].items():
        low, high = arm["clicks_per_1000_ci95"]
        up = arm["clicks_uplift"]
        up_text = "" if up is None else (f"{100 * up:+.1f}% [{100 * arm['clicks_uplift_ci95'][0]:+.1f}%, "
                                         f"{100 * arm['clicks_uplift_ci95'][1]:+.1f}%]")
        print(f"{name:<10} {arm['sessions']:>9,} {arm['requests']:>9,}  {arm['clicks_per_1000']:7.1f} "
              f"[{low:.1f}, {high:.1f}]   {up_text}")
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                     if v is not None and k not in ("n", "keep_seen")) + (" --keep-seen" if args.keep_seen else "")
    print(f"reproduce: .venv/bin/python tests/bench/bench_simulate.py {flags} --n {args.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
