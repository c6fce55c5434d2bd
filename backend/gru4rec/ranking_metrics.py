"""Ranking metrics of the evaluation protocol (spec §6), shared by GRU4Rec and the baselines.

Ties are "conservative": the rank of the target is the number of items whose score is >= the target's (the
target included), so a model that gives many items the same score gains nothing from it.
Recall@N = mean[rank <= N], MRR@N = mean([rank <= N] / rank), micro-averaged over all predictions.
"""
from __future__ import annotations

import numpy as np
from numba import njit

CUTOFFS = (1, 5, 10, 20)
TIE_MODE = "conservative"


@njit(cache=True, nogil=True)
def conservative_ranks(scores, targets, out):
    """scores (M, N) float32, targets (M,) int -> out (M,) int64 = #{j : scores[i, j] >= scores[i, t_i]}."""
    M, N = scores.shape
    for i in range(M):
        row = scores[i]
        t = row[targets[i]]
        n = 0
        for j in range(N):
            n += row[j] >= t
        out[i] = n


def metrics_from_ranks(ranks: np.ndarray, cutoffs=CUTOFFS) -> dict:
    """{"recall@N": .., "mrr@N": .. for each N, "predictions": n, "ties": "conservative"}."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict = {}
    n = len(ranks)
    for k in cutoffs:
        hit = ranks <= k
        out[f"recall@{k}"] = float(hit.mean()) if n else 0.0
        out[f"mrr@{k}"] = float((hit / ranks).mean()) if n else 0.0
    out["predictions"] = n
    out["ties"] = TIE_MODE
    return out


def format_table(metrics: dict, title: str = "") -> str:
    """A small text table: one row per cutoff."""
    cutoffs = sorted(int(k.split("@")[1]) for k in metrics if k.startswith("recall@"))
    lines = [title] if title else []
    lines.append(f"{'N':>4}  {'Recall@N':>9}  {'MRR@N':>9}")
    for k in cutoffs:
        lines.append(f"{k:>4}  {metrics[f'recall@{k}']:>9.4f}  {metrics[f'mrr@{k}']:>9.4f}")
    lines.append(f"{metrics['predictions']} predictions, ties: {metrics['ties']} "
                 "(rank = number of items scored >= the target)")
    return "\n".join(lines)
