"""Popularity: every session gets the items with the most training events (ties share a rank, the
protocol's conservative way)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.artifact import Artifact
from backend.baselines.common import item_ids_of, prediction_points, save_baseline, served_ranks_fixed_scores
from backend.session_data import SessionData


class Popularity:
    FORMAT = "upnext-popular"

    def __init__(self, item_ids: np.ndarray, scores: np.ndarray):
        self.item_ids = item_ids
        self.scores = np.asarray(scores, dtype=np.float32)     # (n_items,) training events per item

    @classmethod
    def fit(cls, data: SessionData) -> "Popularity":
        return cls(data.item_ids, data.support().astype(np.float32))

    def ranks(self, test: SessionData, first_target: int = 2, served: bool = False) -> np.ndarray:
        """(n_predictions,) conservative rank of each target: #{items with score >= the target's};
        ``served``: in the served setting (common.served_rank)."""
        standard, in_served = self.rank_pairs(test, first_target)
        return in_served if served else standard

    def rank_pairs(self, test: SessionData, first_target: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """(standard ranks, served ranks) of every prediction."""
        starts, targets = prediction_points(test, first_target)
        ordered = np.sort(self.scores)
        target_scores = self.scores[test.items[targets]]
        standard = (len(ordered) - np.searchsorted(ordered, target_scores, side="left")).astype(np.int64)
        return standard, served_ranks_fixed_scores(standard, self.scores, test.items, starts, targets)

    def top(self, n: int) -> np.ndarray:
        """The n most popular item indices, most popular first."""
        return np.argsort(-self.scores, kind="stable")[:n]

    def save(self, path: str | Path, data: dict, metrics: dict | None = None) -> Path:
        return save_baseline(path, self.FORMAT, {"scores": self.scores}, item_ids=self.item_ids,
                             support=self.scores, params={}, data=data, metrics=metrics)

    @classmethod
    def from_artifact(cls, art: Artifact) -> "Popularity":
        return cls(item_ids_of(art), np.asarray(art["scores"]))
