"""What the baselines share: the prediction points of a test set, served ranks under fixed scores, and artifact io."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from backend.artifact import Artifact, save_artifact
from backend.gru4rec.ranking_metrics import served_rank
from backend.session_data import SessionData


def prediction_points(test: SessionData, first_target: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, target) int64 index arrays into ``test.items``, one entry per prediction: every target of
    every session from its ``first_target``-th item on (1-based); the prefix is ``items[start:target]``."""
    if first_target < 2:
        raise ValueError("first_target must be at least 2 (the first item of a session has no prefix)")
    starts = np.repeat(test.offsets[:-1], test.lengths)
    position = np.arange(test.n_events) - starts                # 0-based position of each event
    targets = np.flatnonzero(position >= first_target - 1)
    return starts[targets].astype(np.int64), targets.astype(np.int64)


@njit(cache=True, nogil=True)
def served_ranks_fixed_scores(ranks, scores, items, starts, targets):
    """``served_rank`` of each prediction when every prediction has the same item scores (popularity)."""
    out = np.empty(len(targets), np.int64)
    for p in range(len(targets)):
        t = items[targets[p]]
        out[p] = served_rank(ranks[p], scores[t], t, scores, items, starts[p], targets[p])
    return out


def save_baseline(path: str | Path, fmt: str, arrays: dict[str, np.ndarray], *, item_ids, support,
                  params: dict[str, Any], data: dict[str, Any], metrics: dict | None = None) -> Path:
    manifest = {"format": fmt, "params": params, "item_ids": [str(i) for i in item_ids],
                "support": [int(s) for s in support], "metrics": metrics or {}, "data": data}
    return save_artifact(path, manifest, arrays)


def item_ids_of(art: Artifact) -> np.ndarray:
    return np.asarray(art.item_ids, dtype=object)
