"""Ranking metrics of the evaluation protocol (spec §6), shared by GRU4Rec and the baselines.

Ties are "conservative": the rank of the target is the number of items whose score is >= the target's (the
target included), so a model that gives many items the same score gains nothing from it.
Recall@N = mean[rank <= N], MRR@N = mean([rank <= N] / rank), micro-averaged over all predictions.

The served setting ranks as a placement shows: the page's item and the session's earlier items are never shown
(a new placement's default filters), so they are left out of the ranking, and a target among them cannot be
clicked online: it counts as a miss (rank ``HIDDEN_RANK``), exactly as the simulator's visitor then views it
without a click. Served Recall@N x 1,000 is thus the simulator's clicks per 1,000 requests.
"""
from __future__ import annotations

import numpy as np
from numba import njit

CUTOFFS = (1, 5, 10, 20)
TIE_MODE = "conservative"


@njit(cache=True, nogil=True)
def conservative_ranks(scores, targets, out):
    """scores (M, N) float32, targets (M,) int -> out (M,) int64 = #{j : scores[i, j] >= scores[i, t_i]}."""
    for i in range(scores.shape[0]):
        row = scores[i]
        out[i] = _at_least(row, row[targets[i]])


@njit(cache=True, nogil=True, inline="always")
def _at_least(row, t):
    """#{j : row[j] >= t}: the conservative rank of a target scored t."""
    n = 0
    for j in range(row.shape[0]):
        n += row[j] >= t
    return n


HIDDEN_RANK = np.iinfo(np.int64).max // 2   # a target the placement's filters hide: never within any cutoff


@njit(cache=True, nogil=True)
def served_rank(rank, t_score, target, score, items, start, end):
    """The served setting's rank (module docstring: the page's item and the session's earlier items are never
    shown, a target among them is a miss) from the standard conservative ``rank`` of ``target`` (score
    ``t_score``). ``score`` holds this prediction's score of every item (dense, (n_items,)); the seen items are
    ``items[start:end]``. Each distinct seen item scored >= the target no longer counts; a seen target gets
    ``HIDDEN_RANK``. GRU4Rec's evaluation and every baseline's kernel call this one."""
    for q in range(start, end):
        if items[q] == target:
            return HIDDEN_RANK
    n = rank
    for q in range(start, end):
        x = items[q]
        first = True
        for u in range(start, q):
            if items[u] == x:
                first = False
                break
        if first and score[x] >= t_score:
            n -= 1
    return n


@njit(cache=True, nogil=True)
def served_ranks(scores, targets, items, prefix_start, prefix_end, out):
    """``served_rank`` of each row of ``scores`` (M, N): row i's seen items are
    ``items[prefix_start[i]:prefix_end[i]]`` (the page's item is the last of them)."""
    for i in range(scores.shape[0]):
        row = scores[i]
        t = row[targets[i]]
        out[i] = served_rank(_at_least(row, t), t, targets[i], row, items, prefix_start[i], prefix_end[i])


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


def both_protocols(standard_ranks: np.ndarray, served: np.ndarray, cutoffs=CUTOFFS) -> dict:
    """The standard protocol's metrics with the served setting's beside them under "served" (same keys)."""
    return {**metrics_from_ranks(standard_ranks, cutoffs), "served": metrics_from_ranks(served, cutoffs)}


def format_table(metrics: dict, title: str = "") -> str:
    """A small text table: one row per cutoff; the served setting's columns beside the standard ones when
    ``metrics`` has them (``both_protocols``)."""
    cutoffs = sorted(int(k.split("@")[1]) for k in metrics if k.startswith("recall@"))
    served = metrics.get("served")
    lines = [title] if title else []
    if served:
        lines.append(f"{'':>4}  {'standard':^20}  {'served':^20}")
    lines.append(f"{'N':>4}  {'Recall@N':>9}  {'MRR@N':>9}" + (f"  {'Recall@N':>9}  {'MRR@N':>9}" if served else ""))
    for k in cutoffs:
        row = f"{k:>4}  {metrics[f'recall@{k}']:>9.4f}  {metrics[f'mrr@{k}']:>9.4f}"
        if served:
            row += f"  {served[f'recall@{k}']:>9.4f}  {served[f'mrr@{k}']:>9.4f}"
        lines.append(row)
    lines.append(f"{metrics['predictions']} predictions, ties: {metrics['ties']} "
                 "(rank = number of items scored >= the target)")
    if served:
        lines.append("served: the page's item and the session's earlier items left out of the ranking (a new "
                     "placement's default filters); a target among them is a miss, as online: served Recall@20 "
                     "x 1000 = the paired simulator's clicks per 1,000 requests")
    return "\n".join(lines)
