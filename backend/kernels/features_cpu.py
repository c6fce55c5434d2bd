"""Numba CPU twins of ``features_reference`` (same names, same signatures, same results up to float rounding)."""
from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(fastmath=True, error_model="numpy", cache=True, nogil=True)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def _splitmix(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@_jit
def id_keep(rows, step, seed, p, out):
    base = _splitmix(np.uint64(seed) * np.uint64(1_000_003) + np.uint64(step))
    for k in range(len(rows)):
        h = _splitmix(np.uint64(rows[k]) ^ base)
        u = np.float64(h >> _S11) * _INV53
        out[k] = 0.0 if u < p else 1.0


@_jit
def gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, out):
    D = Wy.shape[1]
    for k in range(len(rows)):
        r = rows[k]
        dst = out[k]
        kk = keep[k]
        src = Wy[r]
        for d in range(D):
            dst[d] = kk * src[d]
        for j in range(indptr[r], indptr[r + 1]):
            v = values[j]
            f = Fy[indices[j]]
            for d in range(D):
                dst[d] += v * f[d]


@_jit
def expand_feature_grads(indptr, indices, values, rows, grads, out_rows, out_grads):
    D = grads.shape[1]
    n = 0
    for k in range(len(rows)):
        r = rows[k]
        g = grads[k]
        for j in range(indptr[r], indptr[r + 1]):
            out_rows[n] = indices[j]
            v = values[j]
            dst = out_grads[n]
            for d in range(D):
                dst[d] = v * g[d]
            n += 1
    return n
