"""Item-feature kernels of the GRU4Rec training step as plain numpy: the reference ``features_cpu`` (Numba CPU)
must reproduce (same names, same signatures).

With item features (issue 15) the vector of item i is ``keep_i * Wy[i] + sum_f X[i, f] * Fy[f]``: its ID row,
left out (``keep_i = 0``) with probability ``id_dropout`` per item per step, plus its CSR feature row
(``indptr``, ``indices``, ``values``) times the feature matrix ``Fy``. The backward pass expands the gradient of
each item row into one row per feature entry (``values * grad``); ``adagrad_momentum_rows`` then sums the
duplicates and applies the same sparse Adagrad-momentum update as to ``Wy``.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def id_keep(rows, step, seed, p, out) -> None:
    """out[k] = 0.0 if the ID row of item rows[k] is dropped in this step, else 1.0: uniform(item, step, seed)
    < p, from a hash, so every occurrence of an item in a step gets the same answer."""
    base = _splitmix(np.array([np.uint64(seed) * np.uint64(1_000_003) + np.uint64(step)], np.uint64))[0]
    h = _splitmix(np.asarray(rows).astype(np.uint64) ^ base)
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    out[...] = np.where(u < p, 0.0, 1.0)


def gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, out) -> None:
    """out[k] = keep[k] * Wy[rows[k]] + sum_j values[j] * Fy[indices[j]] over row rows[k]'s entries."""
    out[...] = Wy[rows] * keep[:, None]
    for k, r in enumerate(rows):
        lo, hi = indptr[r], indptr[r + 1]
        out[k] += values[lo:hi] @ Fy[indices[lo:hi]]


def expand_feature_grads(indptr, indices, values, rows, grads, out_rows, out_grads) -> int:
    """For each row k and each feature entry j of item rows[k]: out_rows[n] = indices[j],
    out_grads[n] = values[j] * grads[k]; returns n, the number of rows written."""
    n = 0
    for k, r in enumerate(rows):
        lo, hi = indptr[r], indptr[r + 1]
        out_rows[n:n + hi - lo] = indices[lo:hi]
        out_grads[n:n + hi - lo] = values[lo:hi, None] * grads[k]
        n += hi - lo
    return n
