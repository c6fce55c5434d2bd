"""Numba-CUDA twins of ``training_reference`` (numpy) and ``training_cpu`` (Numba CPU): the hot parts of a
GRU4Rec training step on the GPU, same names, same signatures, same results up to float rounding.

- ``sampled_xe_loss_grad`` / ``sampled_bprmax_loss_grad``: the sampled score block -> loss and gradient
  (kernels in ``cuda_loss``); ``dscores`` may be ``raw`` itself, the GPU step overwrites the scores in place.
- ``adagrad_momentum_rows``: the sparse row-wise Adagrad-momentum update, duplicate rows summed first;
  ``adagrad_momentum_dense``: the same rule on a dense array (the step keeps all dense GRU weights in one
  flat buffer: one launch updates them all).
- ``draw_popularity_samples``: the popularity-sampled store, one thread per draw (binary search = searchsorted).

Arrays: torch CUDA tensors, numba device arrays, or (under the CUDA simulator) numpy arrays; they are used in
place, never copied (``cuda_interop``). Launches go to torch's current stream. These functions are what tests
compare with the references; the GPU step calls the ``launch_*`` helpers below on buffers it wrapped once,
with sizes as arguments (a step's rows are a prefix of a buffer sized for the full batch).

The row-wise update (three launches): (1) every occurrence k of a row bids for it with an atomic max, so the
last occurrence owns the row; (2) the other occurrences add their gradient into the owner's with atomic adds
(the order of those adds is not fixed: rows that occur three or more times may differ in the last bits from run
to run); (3) each owner applies the rule to its row and puts the row's scratch slot back to -1. Entries whose
row is negative are skipped (the fixed-size feature gradients of ``features_cuda`` pad with -1).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from numba import cuda, int32

from backend.kernels.cuda_interop import (FLAT_THREADS, VECTOR_THREADS, blocks, device_zeros, kernel_array,
                                          launch_stream, to_host)
from backend.kernels.cuda_loss import launch_bprmax, launch_xe

_ZERO = np.float32(0.0)
_EPS_ADAGRAD = np.float32(1e-6)


# --- (b) the row-wise Adagrad-momentum update ---

@cuda.jit
def _claim_rows(rows, K, row_slot):
    """row_slot[rows[k]] = the largest k of that row (row_slot starts at -1); a grid-stride loop over k."""
    for k in range(cuda.grid(1), K, cuda.gridsize(1)):
        if rows[k] >= 0:
            cuda.atomic.max(row_slot, rows[k], int32(k))


@cuda.jit
def _add_duplicates(rows, grads, row_slot):
    """Block k: a row's other occurrences add their gradient into its owner's."""
    k = cuda.blockIdx.x
    if rows[k] < 0:
        return
    owner = row_slot[rows[k]]
    if owner != k:
        for d in range(cuda.threadIdx.x, grads.shape[1], VECTOR_THREADS):
            cuda.atomic.add(grads, (owner, d), grads[k, d])


@cuda.jit
def _apply_rows(param, acc, vel, rows, grads, lr, momentum, row_slot):
    """Block k, when it owns its row: acc += g^2; v = momentum v - lr g / sqrt(acc + 1e-6); param += v."""
    k = cuda.blockIdx.x
    row = rows[k]
    if row < 0:                        # a padding entry (features_cuda.launch_expand): the whole block leaves
        return
    owner = row_slot[row]
    cuda.syncthreads()                 # all threads have read the slot before it is put back
    if owner == k:
        for d in range(cuda.threadIdx.x, grads.shape[1], VECTOR_THREADS):
            g = grads[k, d]
            a = acc[row, d] + g * g
            acc[row, d] = a
            step = -lr * g / math.sqrt(a + _EPS_ADAGRAD)
            if momentum > _ZERO:
                step += momentum * vel[row, d]
                vel[row, d] = step
            param[row, d] += step
        if cuda.threadIdx.x == 0:
            row_slot[row] = -1


def launch_adagrad_rows(param, acc, vel, rows, grads, K, lr, momentum, row_slot, stream, kernels=None) -> None:
    """Kernel arrays: param, acc (N, D) float32, vel (N, D) or (0, D) when momentum == 0, rows (>= K,) int
    (rows < 0 are skipped),
    grads (>= K, D) float32 (overwritten), row_slot (N,) int32 of -1 (left as found). ``kernels``: KERNELS, or
    their ``cuda_interop.fixed_types`` for a call site with fixed argument types."""
    if K == 0:
        return
    k = kernels or KERNELS
    lr32, mom32 = np.float32(lr), np.float32(momentum)
    k.claim_rows[blocks(K, FLAT_THREADS), FLAT_THREADS, stream](rows, K, row_slot)
    k.add_duplicates[K, VECTOR_THREADS, stream](rows, grads, row_slot)
    k.apply_rows[K, VECTOR_THREADS, stream](param, acc, vel, rows, grads, lr32, mom32, row_slot)


@cuda.jit
def _adagrad_flat(param, acc, vel, grad, lr, momentum):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        g = grad[i]
        a = acc[i] + g * g
        acc[i] = a
        step = -lr * g / math.sqrt(a + _EPS_ADAGRAD)
        if momentum > _ZERO:
            step += momentum * vel[i]
            vel[i] = step
        param[i] += step


def launch_adagrad_dense(param, acc, vel, grad, lr, momentum, stream, kernels=None) -> None:
    """Kernel arrays, flat float32 of one size (vel empty when momentum == 0)."""
    n = param.size
    if n:
        k = kernels or KERNELS
        k.adagrad_flat[blocks(n, FLAT_THREADS), FLAT_THREADS, stream](param, acc, vel, grad, np.float32(lr),
                                                                      np.float32(momentum))


# --- (c) the popularity-sampled store ---

@cuda.jit
def _draw_samples(cdf, uniforms, out):
    """out[k] = the first item whose cumulative weight exceeds uniforms[k] * total (float64), for each k."""
    n = cdf.size
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        x = uniforms[k] * cdf[n - 1]
        lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) // 2
            if cdf[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
        out[k] = min(lo, n - 1)


def launch_draw_samples(cdf, uniforms, out, stream) -> None:
    """Kernel arrays: cdf (N,) float64 increasing, uniforms (n,) float64 in [0, 1), out (n,) int."""
    n = out.size
    if n:
        _draw_samples[blocks(n, FLAT_THREADS), FLAT_THREADS, stream](cdf, uniforms, out)


KERNELS = SimpleNamespace(claim_rows=_claim_rows, add_duplicates=_add_duplicates, apply_rows=_apply_rows,
                          adagrad_flat=_adagrad_flat)


# --- the host-callable twins (signatures of training_reference) ---

def _flat(a):
    a = kernel_array(a)
    return a.reshape(a.size)


def _loss(launch, raw, dscores, dbias, *params) -> float:
    M, C = raw.shape
    if M == 0:
        return 0.0
    row_loss = device_zeros(M, np.float32)
    loss_sum = device_zeros(1, np.float64)
    launch(_flat(raw), _flat(dscores), M, C, *params, kernel_array(dbias), row_loss, loss_sum, launch_stream())
    return float(to_host(loss_sum)[0])


def sampled_xe_loss_grad(raw, by, log_q, logq, elu_alpha, row_weight, dscores, dbias) -> float:
    """As ``training_reference.sampled_xe_loss_grad`` (returns the sum of the row losses)."""
    return _loss(launch_xe, raw, dscores, dbias, kernel_array(by), kernel_array(log_q), logq, elu_alpha,
                 row_weight)


def sampled_bprmax_loss_grad(raw, by, bpreg, elu_alpha, row_weight, dscores, dbias) -> float:
    """As ``training_reference.sampled_bprmax_loss_grad`` (returns the sum of the row losses)."""
    return _loss(launch_bprmax, raw, dscores, dbias, kernel_array(by), bpreg, elu_alpha, row_weight)


def adagrad_momentum_rows(param, acc, vel, rows, grads, lr, momentum, row_slot) -> None:
    """As ``training_reference.adagrad_momentum_rows``: param, acc (N, D), vel (N, D) or (0, D), rows (K,),
    grads (K, D) (overwritten), row_slot (N,) int32 of -1 (left as found)."""
    launch_adagrad_rows(kernel_array(param), kernel_array(acc), kernel_array(vel), kernel_array(rows),
                        kernel_array(grads), len(rows), lr, momentum, kernel_array(row_slot), launch_stream())


def adagrad_momentum_dense(param, acc, vel, grad, lr, momentum) -> None:
    """As ``training_reference.adagrad_momentum_dense`` (any shape; vel empty when momentum == 0)."""
    launch_adagrad_dense(_flat(param), _flat(acc), _flat(vel), _flat(grad), lr, momentum, launch_stream())


def draw_popularity_samples(cdf, uniforms, out) -> None:
    """As ``training_reference.draw_popularity_samples``: exactly searchsorted(cdf, u * cdf[-1], "right"),
    clipped to the last item."""
    launch_draw_samples(kernel_array(cdf), kernel_array(uniforms), kernel_array(out), launch_stream())
