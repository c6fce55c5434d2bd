"""Accuracy cost of the float16 item matrix: Recall@20 and MRR@20 of one trained GRU4Rec artifact, scored with
the float32 and with the float16 item matrix, through the serving engine (the issue allows at most 0.2% relative
change of Recall@20).

Protocol (../shared/docs/gru4rec-spec.md section 6): each test session starts from a zero state; after each event
the next item is ranked against ALL items, nothing filtered; test items unknown to the model are dropped;
conservative ties (rank = number of items scoring at least the target's score).

Needs a trained artifact (the trainer writes one); without one it says so and exits 0.
Run: .venv/bin/python tests/bench/bench_float16_recall.py --artifact DIR [--test FILE] [--limit N]
  (--artifact defaults to UPNEXT_BENCH_ARTIFACT; --test to ../shared/data/diginetica-srgnn/test_sessions.txt,
  one session per line with item ids separated by spaces, or a GRU4Rec TSV file; ids as in the artifact's item_ids)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.serving.engine import GRU4RecEngine  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
N, BATCH = 20, 256


def read_sessions(test_file: Path) -> list[list[str]]:
    """Item ids of each test session, in event order. Two layouts: one session per line (ids separated by spaces),
    or the GRU4Rec TSV layout with a header ``SessionId<TAB>ItemId<TAB>Time``."""
    with open(test_file) as f:
        first = f.readline()
        if not first.startswith("SessionId"):
            return [first.split()] + [line.split() for line in f]
        cols = first.rstrip("\n").split("\t")
        s_col, i_col, t_col = cols.index("SessionId"), cols.index("ItemId"), cols.index("Time")
        events: dict[str, list[tuple[float, int, str]]] = {}
        for n, line in enumerate(f):
            row = line.rstrip("\n").split("\t")
            events.setdefault(row[s_col], []).append((float(row[t_col]), n, row[i_col]))
    return [[item for *_, item in sorted(evs)] for evs in events.values()]


def read_cases(engine: GRU4RecEngine, test_file: Path, limit: int | None) -> tuple[list[list[int]], int]:
    """Test sessions as known item indices (unknown items dropped), and how many items were dropped."""
    sessions, dropped = [], 0
    for ids in read_sessions(test_file):
        items = engine.indices(ids).tolist()
        dropped += len(ids) - len(items)
        if len(items) >= 2:
            sessions.append(items)
        if limit and len(sessions) >= limit:
            break
    return sessions, dropped


def evaluate(engine: GRU4RecEngine, sessions: list[list[int]]) -> dict:
    """Recall@N and MRR@N (conservative ties) over every next-item prediction of ``sessions``."""
    hits = rr = cases = 0
    states, targets = [], []

    def flush() -> None:
        nonlocal hits, rr, cases
        # the best N + 1 items tell whether the target's conservative rank is at most N
        items, scores = engine.top_k_many(np.stack(states), N + 1)
        for row, target in enumerate(targets):
            where = np.flatnonzero(items[row] == target)
            if len(where):
                rank = int(np.sum(scores[row] >= scores[row, where[0]]))
                if rank <= N:
                    hits += 1
                    rr += 1.0 / rank
        cases += len(targets)
        states.clear()
        targets.clear()

    for items in sessions:
        state = engine.zero_state()
        for t in range(len(items) - 1):
            state = engine.advance(state, items[t])
            states.append(state)
            targets.append(items[t + 1])
            if len(states) == BATCH:
                flush()
    if states:
        flush()
    return {"cases": cases, "recall": hits / max(1, cases), "mrr": rr / max(1, cases)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifact", default=os.environ.get("UPNEXT_BENCH_ARTIFACT"))
    p.add_argument("--test", type=Path, default=SHARED_DATA / "diginetica-srgnn" / "test_sessions.txt")
    p.add_argument("--limit", type=int, help="at most this many test sessions")
    args = p.parse_args()
    if not args.artifact:
        print("bench_float16_recall: skipped, no trained artifact (give --artifact DIR or UPNEXT_BENCH_ARTIFACT)")
        return 0
    if not args.test.exists():
        print(f"bench_float16_recall: skipped, test file not available: {args.test}")
        return 0
    print(f"# command: .venv/bin/python tests/bench/bench_float16_recall.py --artifact {args.artifact} "
          f"--test {args.test}" + (f" --limit {args.limit}" if args.limit else ""))
    results = {}
    for item_matrix in ("float32", "float16"):
        engine = GRU4RecEngine.load(args.artifact, item_matrix=item_matrix)
        engine.prewarm()
        sessions, dropped = read_cases(engine, args.test, args.limit)
        t0 = time.perf_counter()
        results[item_matrix] = r = evaluate(engine, sessions)
        print(f"{item_matrix}: Recall@{N} {r['recall']:.6f}  MRR@{N} {r['mrr']:.6f}  over {r['cases']:,} cases "
              f"({dropped} unknown test items dropped, ties conservative, {time.perf_counter() - t0:.0f} s)")
    change = (results["float16"]["recall"] - results["float32"]["recall"]) / max(1e-12, results["float32"]["recall"])
    print(f"Recall@{N} relative change with float16: {change * 100:+.3f}% (allowed: within 0.2%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
