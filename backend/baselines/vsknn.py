"""V-SKNN (Ludewig & Jannach, 2018): session-kNN where older items of the current session weigh less.

For a session prefix x_1..x_L, item x_p gets the weight p / L (linear decay; a repeated item keeps its latest
weight). Candidate neighbours are the ``sample_size`` most recent training sessions that share an item with
the prefix; the similarity of a candidate n is the dot product of the weighted prefix with n's binary item
vector, sum_{x in prefix, x in n} w_x; the ``k`` most similar candidates are the neighbours, and

    score(j) = sum over neighbours n holding j of sim(prefix, n)

Items in no neighbour score 0 (a tie, ranked conservatively). Defaults: k=100, sample_size=500.

Artifact: the training sessions as two CSR structures: ``session_ptr``/``session_items`` (each session's
distinct items) and ``item_ptr``/``item_sessions`` (each item's sessions, oldest first).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from backend.artifact import Artifact
from backend.baselines.common import item_ids_of, prediction_points, save_baseline
from backend.gru4rec.ranking_metrics import served_rank
from backend.baselines.itemknn import sessions_of_items, unique_session_items
from backend.session_data import SessionData

K, SAMPLE_SIZE = 100, 500


class VSKNN:
    FORMAT = "upnext-vsknn"

    def __init__(self, item_ids, session_ptr, session_items, item_ptr, item_sessions, support, params: dict):
        self.item_ids = item_ids
        self.session_ptr = np.asarray(session_ptr)        # (n_sessions + 1,) int64
        self.session_items = np.asarray(session_items)    # (n,) int32
        self.item_ptr = np.asarray(item_ptr)              # (n_items + 1,) int64
        self.item_sessions = np.asarray(item_sessions)    # (n,) int32
        self.support = np.asarray(support)
        self.params = params

    @classmethod
    def fit(cls, data: SessionData, k: int = K, sample_size: int = SAMPLE_SIZE) -> "VSKNN":
        sess_ptr, sess_items = unique_session_items(data)
        item_ptr, item_sessions = sessions_of_items(sess_ptr, sess_items, data.n_items)
        return cls(data.item_ids, sess_ptr, sess_items, item_ptr, item_sessions, data.support(),
                   {"k": k, "sample_size": sample_size, "weighting": "linear"})

    def ranks(self, test: SessionData, first_target: int = 2, served: bool = False) -> np.ndarray:
        """(n_predictions,) conservative rank of each target; ``served``: in the served setting."""
        standard, in_served = self.rank_pairs(test, first_target)
        return in_served if served else standard

    def rank_pairs(self, test: SessionData, first_target: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(standard ranks, served ranks) of every prediction (common.served_rank)."""
        starts, targets = prediction_points(test, first_target)
        n_sessions = len(self.session_ptr) - 1
        return _ranks(self.session_ptr, self.session_items, self.item_ptr, self.item_sessions, test.items,
                      starts, targets, int(self.params["k"]), int(self.params["sample_size"]), n_sessions,
                      len(self.item_ids))

    def save(self, path: str | Path, data: dict, metrics: dict | None = None) -> Path:
        arrays = {"session_ptr": self.session_ptr, "session_items": self.session_items,
                  "item_ptr": self.item_ptr, "item_sessions": self.item_sessions}
        return save_baseline(path, self.FORMAT, arrays, item_ids=self.item_ids, support=self.support,
                             params=self.params, data=data, metrics=metrics)

    @classmethod
    def from_artifact(cls, art: Artifact) -> "VSKNN":
        return cls(item_ids_of(art), art["session_ptr"], art["session_items"], art["item_ptr"],
                   art["item_sessions"], art.manifest["support"], art.manifest["params"])


@njit(cache=True, nogil=True)
def _ranks(session_ptr, session_items, item_ptr, item_sessions, items, starts, targets, k, sample_size,
           n_sessions, n_items):
    out = np.empty(len(targets), np.int64)
    out_served = np.empty(len(targets), np.int64)
    sim = np.zeros(n_sessions, np.float64)         # per candidate session, reset after each prediction
    cand = np.empty(0, np.int64)
    score = np.zeros(n_items, np.float64)
    weight = np.zeros(n_items, np.float64)
    scored = np.empty(n_items, np.int64)
    for p in range(len(targets)):
        start, end = starts[p], targets[p]
        L = end - start
        # weights of the prefix's items: position / length, the latest occurrence wins
        for q in range(start, end):
            weight[items[q]] = (q - start + 1) / L
        # candidates: each distinct item's `sample_size` most recent sessions; their union's `sample_size` most
        # recent sessions are exactly the most recent sessions sharing an item with the prefix
        n_cand = 0
        for q in range(start, end):
            x = items[q]
            if weight[x] < 0:                      # already done (marked below)
                continue
            lo = max(item_ptr[x], item_ptr[x + 1] - sample_size)
            n_cand += item_ptr[x + 1] - lo
        if len(cand) < n_cand:
            cand = np.empty(2 * n_cand, np.int64)
        n_cand = 0
        for q in range(start, end):
            x = items[q]
            w = weight[x]
            if w < 0:
                continue
            lo = max(item_ptr[x], item_ptr[x + 1] - sample_size)
            for e in range(lo, item_ptr[x + 1]):
                s = item_sessions[e]
                if sim[s] == 0:
                    cand[n_cand] = s
                    n_cand += 1
                sim[s] += w
            weight[x] = -1.0                       # mark: each distinct item once
        for q in range(start, end):
            weight[items[q]] = 0.0
        recent = np.sort(cand[:n_cand])[::-1][:sample_size]
        sims = np.empty(len(recent), np.float64)
        for c in range(len(recent)):
            sims[c] = sim[recent[c]]
        order = np.argsort(-sims, kind="mergesort")   # ties: the more recent session first
        n_scored = 0
        for c in range(min(k, len(recent))):
            s = recent[order[c]]
            for e in range(session_ptr[s], session_ptr[s + 1]):
                j = session_items[e]
                if score[j] == 0:
                    scored[n_scored] = j
                    n_scored += 1
                score[j] += sims[order[c]]
        t_score = score[items[end]]
        if t_score <= 0:
            out[p] = n_items
        else:
            r = 0
            for c in range(n_scored):
                if score[scored[c]] >= t_score:
                    r += 1
            out[p] = r
        out_served[p] = served_rank(out[p], t_score, items[end], score, items, start, end)
        for c in range(n_scored):
            score[scored[c]] = 0.0
        for c in range(n_cand):
            sim[cand[c]] = 0.0
    return out, out_served
