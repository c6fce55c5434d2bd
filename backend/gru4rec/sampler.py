"""Popularity-sampled negatives shared by all rows of a step (spec §3).

Items are drawn with replacement with p(item) proportional to support^sample_alpha, by inverse CDF. A store of
``sample_store_size`` ids is drawn ahead (one call, so the per-draw cost stays low) and consumed one row of
``n_sample`` ids per step; it is drawn again when used up.

``RowStore`` is that store's bookkeeping, wherever the store lives: ``SampleStore`` here (numpy, the Numba CPU
kernel) and ``cuda_train.DeviceSampleStore`` (a torch tensor on the GPU, the Numba-CUDA kernel) fill it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType

import numpy as np

from backend.kernels import training_cpu as ops_cpu

CHUNK = 1 << 20         # ids drawn per call while the store is filled: bounded temporary memory


def popularity_cdf(support: np.ndarray, sample_alpha: float, n_sample: int) -> np.ndarray:
    """(n_items,) float64 cumulative support^sample_alpha; items with support 0 get no mass (never drawn)."""
    weights = np.asarray(support, dtype=np.float64) ** sample_alpha
    weights[np.asarray(support) <= 0] = 0.0
    if n_sample > 0 and weights.sum() <= 0:
        raise ValueError("no item has a positive support")
    return np.cumsum(weights)


def store_rows(store_size: int, n_sample: int) -> int:
    """Rows of ``n_sample`` ids in a store of about ``store_size`` ids (at least one)."""
    return max(1, store_size // max(n_sample, 1))


class RowStore(ABC):
    """A (rows, n_sample) int32 store drawn ahead and consumed one row per step; ``_fill`` draws ids into a flat
    part of it (CHUNK ids at a time)."""

    def __init__(self, store):
        self.store = store
        self.rows = store.shape[0]
        self.next_row = self.rows           # empty: drawn on first use
        self.generations = 0

    def next(self):
        """(n_sample,) int32 ids for one step (a view into the store)."""
        if self.next_row == self.rows:
            self._draw()
        row = self.store[self.next_row]
        self.next_row += 1
        return row

    def _draw(self) -> None:
        flat = self.store.reshape(-1)
        for start in range(0, len(flat), CHUNK):
            self._fill(flat[start:start + CHUNK])
        self.next_row = 0
        self.generations += 1

    @abstractmethod
    def _fill(self, part) -> None:
        """Draw into ``part`` (a flat slice of the store)."""


class SampleStore(RowStore):
    def __init__(self, support: np.ndarray, sample_alpha: float, n_sample: int, store_size: int,
                 rng: np.random.Generator, ops: ModuleType = ops_cpu):
        """support (n_items,) training counts; items with support 0 are never drawn."""
        self.cdf = popularity_cdf(support, sample_alpha, n_sample)
        self.n_sample = n_sample
        self.rng = rng
        self.ops = ops
        super().__init__(np.empty((store_rows(store_size, n_sample), n_sample), dtype=np.int32))

    def _fill(self, part: np.ndarray) -> None:
        self.ops.draw_popularity_samples(self.cdf, self.rng.random(len(part)), part)
