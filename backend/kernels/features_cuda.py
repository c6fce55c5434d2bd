"""Numba-CUDA twins of ``features_reference`` (numpy) and ``features_cpu`` (Numba CPU): the item-feature parts of
the GRU4Rec training step on the GPU (issue 15), same names, same signatures, same results up to float rounding.

- ``id_keep``: whether the ID row of each item is kept this step: the same hash of (item, step, seed) as the CPU
  kernels, so the GPU drops exactly the ID rows the CPU trainer drops (no random generator involved). The
  comparison ``u < p`` is done on integers (``h >> 11 < ceil(p * 2**53)``, exact), so no float64 on the GPU.
- ``gather_item_vectors``: ``out[k] = keep[k] * Wy[rows[k]] + sum_j values[j] * Fy[indices[j]]``, one block per
  row, the features added in CSR order (deterministic, the CPU kernel's order).
- ``expand_feature_grads``: one gradient row per feature entry (``values[j] * grads[k]``). The GPU step writes
  them at fixed places (entry j of row k at ``k * per_item + j``, unused places get row -1), so that a step's
  launches have fixed sizes (CUDA graphs); ``training_cuda.launch_adagrad_rows`` skips rows < 0 and sums the
  duplicates (a feature shared by several items of the step) with float atomics, like Wy's duplicate rows: a
  feature used three or more times in a step may differ in the last bits from run to run and from the CPU.

The GPU step calls the ``launch_*`` helpers on buffers it wrapped once; the step counter of ``id_keep`` is a
device scalar there (a CUDA graph replays the same launch arguments), which the step increments on the device.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from types import SimpleNamespace

import numpy as np
from numba import cuda, uint64

from backend.kernels.cuda_interop import (FLAT_THREADS, SIMULATOR, VECTOR_THREADS, blocks, kernel_array,
                                          launch_stream, to_host)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STEP_MUL = np.uint64(1_000_003)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@cuda.jit(device=True)
def _splitmix(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


def drop_threshold(p: float) -> np.uint64:
    """``ceil(p * 2**53)``: for an integer x < 2**53, ``x * 2**-53 < p`` exactly when ``x < ceil(p * 2**53)``."""
    return np.uint64(math.ceil(min(max(float(p), 0.0), 1.0) * 9007199254740992.0))


@cuda.jit
def _id_keep(rows, first, K, step, seed, threshold, out):
    """out[first + k] = 0 if item rows[first + k]'s ID row is dropped at step step[0], else 1 (k < K)."""
    base = _splitmix(seed * _STEP_MUL + uint64(step[0]))
    for k in range(cuda.grid(1), K, cuda.gridsize(1)):
        h = _splitmix(uint64(rows[first + k]) ^ base)
        out[first + k] = _ZERO if (h >> _S11) < threshold else _ONE


@cuda.jit
def _gather(Wy, keep, Fy, indptr, indices, values, rows, first, out):
    """Block k: out[k] = keep[first + k] * Wy[r] + sum_j values[j] * Fy[indices[j]], r = rows[first + k]."""
    k = cuda.blockIdx.x
    r = rows[first + k]
    kk = keep[first + k]
    lo = indptr[r]
    hi = indptr[r + 1]
    for d in range(cuda.threadIdx.x, out.shape[1], VECTOR_THREADS):
        acc = kk * Wy[r, d]
        for j in range(lo, hi):
            acc += values[j] * Fy[indices[j], d]
        out[k, d] = acc


@cuda.jit
def _expand(indptr, indices, values, rows, grads, per_item, out_rows, out_grads):
    """Block k: entry j of item rows[k] at place k * per_item + j (row indices[j], gradient values[j] *
    grads[k]); the places its item does not fill get row -1."""
    k = cuda.blockIdx.x
    r = rows[k]
    lo = indptr[r]
    n = indptr[r + 1] - lo
    base = k * per_item
    for j in range(per_item):
        if j < n:
            v = values[lo + j]
            for d in range(cuda.threadIdx.x, grads.shape[1], VECTOR_THREADS):
                out_grads[base + j, d] = v * grads[k, d]
            if cuda.threadIdx.x == 0:
                out_rows[base + j] = indices[lo + j]
        elif cuda.threadIdx.x == 0:
            out_rows[base + j] = -1


KERNELS = SimpleNamespace(id_keep=_id_keep, gather=_gather, expand=_expand)


def launch_id_keep(rows, first, K, step, seed, p, out, stream, kernels=None) -> None:
    """Kernel arrays: rows (>= first + K,) int, step (1,) int64 (the step number), out (>= first + K,) float32."""
    if K:
        k = kernels or KERNELS
        with _wrapping_quietly():
            k.id_keep[blocks(K, FLAT_THREADS), FLAT_THREADS, stream](rows, first, K, step, np.uint64(seed),
                                                                     drop_threshold(p), out)


@contextlib.contextmanager
def _wrapping_quietly():
    """The simulator runs the hash on numpy uint64 scalars, which wrap around as the GPU does but warn each time
    (an error under the tests' warning filter); its threads do not inherit numpy's errstate, so the warning is
    filtered instead (warning filters are process-wide). Nothing to do on a GPU."""
    if not SIMULATOR:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in scalar", RuntimeWarning)
        yield


def launch_gather(Wy, keep, Fy, indptr, indices, values, rows, first, K, out, stream, kernels=None) -> None:
    """Kernel arrays: Wy (N, D), Fy (F, D) float32, the CSR arrays, rows and keep read from ``first`` on, out
    (>= K, D) written at rows 0..K-1."""
    if K:
        k = kernels or KERNELS
        k.gather[K, VECTOR_THREADS, stream](Wy, keep, Fy, indptr, indices, values, rows, first, out)


def launch_expand(indptr, indices, values, rows, grads, K, per_item, out_rows, out_grads, stream,
                  kernels=None) -> None:
    """Kernel arrays: rows (>= K,), grads (>= K, D); out_rows (>= K * per_item,) int64, out_grads
    (>= K * per_item, D). ``per_item``: at least the largest feature count of an item."""
    if K and per_item:
        k = kernels or KERNELS
        k.expand[K, VECTOR_THREADS, stream](indptr, indices, values, rows, grads, per_item, out_rows, out_grads)


# --- the host-callable twins (signatures of features_reference) ---

def id_keep(rows, step, seed, p, out) -> None:
    """As ``features_reference.id_keep``."""
    launch_id_keep(kernel_array(rows), 0, len(rows), kernel_array(np.array([int(step)], np.int64)), seed, p,
                   kernel_array(out), launch_stream())


def gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, out) -> None:
    """As ``features_reference.gather_item_vectors``."""
    launch_gather(*(kernel_array(a) for a in (Wy, keep, Fy, indptr, indices, values, rows)), 0, len(rows),
                  kernel_array(out), launch_stream())


def expand_feature_grads(indptr, indices, values, rows, grads, out_rows, out_grads) -> int:
    """As ``features_reference.expand_feature_grads``: the entries packed at the front of out_rows / out_grads;
    returns their number. (The GPU step uses ``launch_expand``'s fixed places instead.)"""
    indptr_h = to_host(kernel_array(indptr)) if not isinstance(indptr, np.ndarray) else indptr
    rows_h = to_host(kernel_array(rows)) if not isinstance(rows, np.ndarray) else rows
    per_item = int(np.diff(indptr_h).max(initial=0))
    K, D = len(rows_h), grads.shape[1]
    place_rows = kernel_array(np.zeros(K * per_item, np.int64))
    place_grads = kernel_array(np.zeros((K * per_item, D), np.float32))
    launch_expand(*(kernel_array(a) for a in (indptr, indices, values, rows, grads)), K, per_item,
                  place_rows, place_grads, launch_stream())
    r, g = to_host(place_rows), to_host(place_grads)
    used = r >= 0
    n = int(used.sum())
    out_rows[:n] = r[used]
    out_grads[:n] = g[used]
    return n
