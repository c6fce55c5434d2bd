"""Popularity-sampled negatives shared by all rows of a step (spec §3).

Items are drawn with replacement with p(item) proportional to support^sample_alpha, by inverse CDF. A store of
``sample_store_size`` ids is drawn ahead (one call, so the per-draw cost stays low) and consumed one row of
``n_sample`` ids per step; it is drawn again when used up.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from backend.kernels import training_cpu as ops_cpu


class SampleStore:
    def __init__(self, support: np.ndarray, sample_alpha: float, n_sample: int, store_size: int,
                 rng: np.random.Generator, ops: ModuleType = ops_cpu):
        """support (n_items,) training counts; items with support 0 are never drawn."""
        weights = np.asarray(support, dtype=np.float64) ** sample_alpha
        weights[np.asarray(support) <= 0] = 0.0
        if n_sample > 0 and weights.sum() <= 0:
            raise ValueError("no item has a positive support")
        self.cdf = np.cumsum(weights)
        self.n_sample = n_sample
        self.rng = rng
        self.ops = ops
        self.rows = max(1, store_size // max(n_sample, 1))
        self.store = np.empty((self.rows, n_sample), dtype=np.int32)
        self.next_row = self.rows           # empty: drawn on first use
        self.generations = 0

    def next(self) -> np.ndarray:
        """(n_sample,) int32 ids for one step (a view into the store)."""
        if self.next_row == self.rows:
            self._draw()
        row = self.store[self.next_row]
        self.next_row += 1
        return row

    def _draw(self) -> None:
        flat = self.store.reshape(-1)
        chunk = 1 << 20
        for start in range(0, len(flat), chunk):     # bounded temporary memory
            part = flat[start:start + chunk]
            self.ops.draw_popularity_samples(self.cdf, self.rng.random(len(part)), part)
        self.next_row = 0
        self.generations += 1
