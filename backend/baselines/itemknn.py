"""Item-kNN as in the GRU4Rec paper: recommend the items most similar to the session's last item.

    sim(i, j) = cooc(i, j) / ((supp_i + lambda)^alpha * (supp_j + lambda)^(1 - alpha))

cooc(i, j) is the number of training sessions holding both items, supp_i the number holding i; each item keeps
its ``k`` most similar neighbours (k=100, lambda=20, alpha=0.5; ties by item index). Items that are not
neighbours of the last item all score 0 (a tie, ranked conservatively).

Artifact: ``neighbours`` (n_items, k) int32 (-1 = none) and ``similarities`` (n_items, k) float32, each row
sorted by decreasing similarity.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from backend.artifact import Artifact
from backend.baselines.common import item_ids_of, prediction_points, save_baseline
from backend.gru4rec.ranking_metrics import served_rank
from backend.session_data import SessionData

K, LAMBDA, ALPHA = 100, 20.0, 0.5


class ItemKNN:
    FORMAT = "upnext-itemknn"

    def __init__(self, item_ids, neighbours, similarities, support, params: dict):
        self.item_ids = item_ids
        self.neighbours = np.asarray(neighbours)          # (n_items, k) int32
        self.similarities = np.asarray(similarities)      # (n_items, k) float32
        self.support = np.asarray(support)
        self.params = params

    @classmethod
    def fit(cls, data: SessionData, k: int = K, lam: float = LAMBDA, alpha: float = ALPHA) -> "ItemKNN":
        sess_ptr, sess_items = unique_session_items(data)
        item_ptr, item_sessions = sessions_of_items(sess_ptr, sess_items, data.n_items)
        supp = np.diff(item_ptr).astype(np.float64)
        neighbours, sims = _top_neighbours(sess_ptr, sess_items, item_ptr, item_sessions, supp, k, lam, alpha)
        return cls(data.item_ids, neighbours, sims, data.support(), {"k": k, "lambda": lam, "alpha": alpha})

    def ranks(self, test: SessionData, first_target: int = 2, served: bool = False) -> np.ndarray:
        """(n_predictions,) conservative rank of each target; ``served``: in the served setting."""
        standard, in_served = self.rank_pairs(test, first_target)
        return in_served if served else standard

    def rank_pairs(self, test: SessionData, first_target: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(standard ranks, served ranks) of every prediction (common.served_rank)."""
        starts, targets = prediction_points(test, first_target)
        return _ranks(self.neighbours, self.similarities, test.items, starts, targets, len(self.item_ids))

    def save(self, path: str | Path, data: dict, metrics: dict | None = None) -> Path:
        return save_baseline(path, self.FORMAT, {"neighbours": self.neighbours, "similarities": self.similarities},
                             item_ids=self.item_ids, support=self.support, params=self.params, data=data,
                             metrics=metrics)

    @classmethod
    def from_artifact(cls, art: Artifact) -> "ItemKNN":
        return cls(item_ids_of(art), art["neighbours"], art["similarities"], art.manifest["support"],
                   art.manifest["params"])


def unique_session_items(data: SessionData) -> tuple[np.ndarray, np.ndarray]:
    """Each session's distinct items, sorted: (session_ptr (n_sessions + 1,) int64, items (n,) int32)."""
    return _unique_per_session(data.offsets, data.items)


def sessions_of_items(sess_ptr, sess_items, n_items) -> tuple[np.ndarray, np.ndarray]:
    """The sessions holding each item, oldest first: (item_ptr (n_items + 1,) int64, sessions (n,) int32)."""
    session_of = np.repeat(np.arange(len(sess_ptr) - 1, dtype=np.int32), np.diff(sess_ptr))
    order = np.argsort(sess_items, kind="stable")              # stable: sessions stay in time order
    item_ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(sess_items, minlength=n_items), out=item_ptr[1:])
    return item_ptr, session_of[order]


@njit(cache=True, nogil=True)
def _unique_per_session(offsets, items):
    ptr = np.zeros(len(offsets), np.int64)
    out = np.empty(len(items), np.int32)
    n = 0
    for s in range(len(offsets) - 1):
        sess = np.sort(items[offsets[s]:offsets[s + 1]])
        for j in range(len(sess)):
            if j == 0 or sess[j] != sess[j - 1]:
                out[n] = sess[j]
                n += 1
        ptr[s + 1] = n
    return ptr, out[:n].copy()


@njit(cache=True, nogil=True)
def _top_neighbours(sess_ptr, sess_items, item_ptr, item_sessions, supp, k, lam, alpha):
    n_items = len(item_ptr) - 1
    neighbours = np.full((n_items, k), -1, np.int32)
    sims = np.zeros((n_items, k), np.float32)
    cooc = np.zeros(n_items, np.float64)
    touched = np.empty(n_items, np.int64)
    for i in range(n_items):
        n_touched = 0
        for p in range(item_ptr[i], item_ptr[i + 1]):
            s = item_sessions[p]
            for q in range(sess_ptr[s], sess_ptr[s + 1]):
                j = sess_items[q]
                if j == i:
                    continue
                if cooc[j] == 0:
                    touched[n_touched] = j
                    n_touched += 1
                cooc[j] += 1
        cand = np.sort(touched[:n_touched])       # ties: the smaller item index first
        score = np.empty(n_touched, np.float64)
        left = (supp[i] + lam) ** alpha
        for c in range(n_touched):
            j = cand[c]
            score[c] = cooc[j] / (left * (supp[j] + lam) ** (1.0 - alpha))
            cooc[j] = 0
        order = np.argsort(-score, kind="mergesort")
        for c in range(min(k, n_touched)):
            neighbours[i, c] = cand[order[c]]
            sims[i, c] = score[order[c]]
    return neighbours, sims


@njit(cache=True, nogil=True)
def _ranks(neighbours, sims, items, starts, targets, n_items):
    out = np.empty(len(targets), np.int64)
    out_served = np.empty(len(targets), np.int64)
    score = np.zeros(n_items, np.float32)          # the last item's neighbours' scores, reset after each
    k = neighbours.shape[1]
    for p in range(len(targets)):
        row = items[targets[p] - 1]
        target = items[targets[p]]
        t_score = np.float32(0.0)
        for c in range(k):
            if neighbours[row, c] == target:
                t_score = sims[row, c]
        if t_score <= 0:
            out[p] = n_items          # scored 0 like every item outside the list: the conservative rank
        else:
            r = 0
            for c in range(k):
                if neighbours[row, c] >= 0 and sims[row, c] >= t_score:
                    r += 1
            out[p] = r
        for c in range(k):
            if neighbours[row, c] >= 0:
                score[neighbours[row, c]] = sims[row, c]
        out_served[p] = served_rank(out[p], t_score, target, score, items, starts[p], targets[p])
        for c in range(k):
            if neighbours[row, c] >= 0:
                score[neighbours[row, c]] = 0
    return out, out_served
