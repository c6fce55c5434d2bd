"""The sampled loss and its gradient as Numba-CUDA kernels (spec §4), fused and in place.

The score block (M rows, C = M + n_sample columns, positive of row i in column i) is a flat float32 array, row i
at ``[i*C, (i+1)*C)``; the trainer gets it from one cuBLAS product ``h @ Wy[Y].T``. One block of ``ROW_THREADS``
threads per row reads its row (plus the column biases and logQ) a few times and writes the gradient of
``row_weight * sum(row losses)`` with respect to the raw scores, which may overwrite the scores themselves:
scores, activations, softmax and gradient never exist as separate matrices. A second, small kernel sums the
gradient's columns (the bias gradient) and adds the step's loss to a float64 accumulator on the device, so that
the trainer reads it only when it reports (no synchronisation per step). Both are deterministic.

Every constant is float32 (a float64 literal would make the GPU compute in float64), except the loss
accumulator, which is float64 on purpose. ``training_reference`` holds the formulas; this file follows the
order of ``training_cpu``.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from numba import cuda, float32

from backend.kernels.cuda_interop import FLAT_THREADS, ROW_THREADS, blocks

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_EPS_LOG = np.float32(1e-24)
_NEG_INF = np.float32(-np.inf)


@cuda.jit(device=True)
def _activate(s, alpha):
    """The final activation: elu-alpha, or linear when alpha == 0."""
    if alpha > _ZERO and s <= _ZERO:
        return alpha * math.expm1(s)
    return s


@cuda.jit(device=True)
def _slope(s, alpha):
    """The final activation's derivative at s."""
    if alpha > _ZERO and s <= _ZERO:
        return alpha * math.exp(s)
    return _ONE


@cuda.jit(device=True)
def _block_max(buf, t, value):
    """Max of ``value`` over the block's threads (``buf``: shared (ROW_THREADS,))."""
    buf[t] = value
    cuda.syncthreads()
    step = ROW_THREADS // 2
    while step > 0:
        if t < step and buf[t + step] > buf[t]:
            buf[t] = buf[t + step]
        cuda.syncthreads()
        step //= 2
    result = buf[0]
    cuda.syncthreads()                 # everyone has read buf[0] before it is written again
    return result


@cuda.jit(device=True)
def _block_sum(buf, t, value):
    buf[t] = value
    cuda.syncthreads()
    step = ROW_THREADS // 2
    while step > 0:
        if t < step:
            buf[t] += buf[t + step]
        cuda.syncthreads()
        step //= 2
    result = buf[0]
    cuda.syncthreads()
    return result


@cuda.jit(device=True)
def _block_sum4(buf, t, a, b, c, d):
    """Four sums at once (``buf``: shared (4, ROW_THREADS))."""
    buf[0, t] = a
    buf[1, t] = b
    buf[2, t] = c
    buf[3, t] = d
    cuda.syncthreads()
    step = ROW_THREADS // 2
    while step > 0:
        if t < step:
            for q in range(4):
                buf[q, t] += buf[q, t + step]
        cuda.syncthreads()
        step //= 2
    a, b, c, d = buf[0, 0], buf[1, 0], buf[2, 0], buf[3, 0]
    cuda.syncthreads()
    return a, b, c, d


@cuda.jit
def xe_rows(raw, dscores, C, by, log_q, logq, alpha, row_weight, row_loss):
    """Cross-entropy with logQ, block i = row i: r'_j = act(raw_ij + by_j) - logq log_q_j,
    L_i = -log(softmax(r'_i)_i + 1e-24); dscores_ij = row_weight c (p_j - [j == i]) act'(.), c = p_i / (p_i + eps)."""
    buf = cuda.shared.array(ROW_THREADS, float32)
    i = cuda.blockIdx.x
    t = cuda.threadIdx.x
    base = i * C
    x_pos = _activate(raw[base + i] + by[i], alpha) - logq * log_q[i]   # read before any thread writes
    rmax = _NEG_INF
    for j in range(t, C, ROW_THREADS):
        x = _activate(raw[base + j] + by[j], alpha) - logq * log_q[j]
        if x > rmax:
            rmax = x
    rmax = _block_max(buf, t, rmax)
    z = _ZERO
    for j in range(t, C, ROW_THREADS):
        z += math.exp(_activate(raw[base + j] + by[j], alpha) - logq * log_q[j] - rmax)
    z = _block_sum(buf, t, z)
    p_pos = math.exp(x_pos - rmax) / z
    c = p_pos / (p_pos + _EPS_LOG)
    scale = c * row_weight / z
    for j in range(t, C, ROW_THREADS):
        s = raw[base + j] + by[j]
        g = math.exp(_activate(s, alpha) - logq * log_q[j] - rmax) * scale
        if j == i:
            g -= c * row_weight
        dscores[base + j] = g * _slope(s, alpha)
    if t == 0:
        row_loss[i] = -math.log(p_pos + _EPS_LOG)


@cuda.jit
def bprmax_rows(raw, dscores, C, by, bpreg, alpha, row_weight, row_loss):
    """BPR-max with bpreg, block i = row i: s_j = softmax of r over j != i,
    L_i = -log(sum_j s_j sigmoid(r_i - r_j) + 1e-24) + bpreg sum_j s_j r_j^2 (gradient: training_reference)."""
    buf = cuda.shared.array(ROW_THREADS, float32)
    sums = cuda.shared.array((4, ROW_THREADS), float32)
    i = cuda.blockIdx.x
    t = cuda.threadIdx.x
    base = i * C
    if C == 1:                         # one row and no negative: nothing to rank against
        if t == 0:
            dscores[base] = _ZERO
            row_loss[i] = _ZERO
        return
    r_pos = _activate(raw[base + i] + by[i], alpha)
    rmax = _NEG_INF
    for j in range(t, C, ROW_THREADS):
        if j != i:
            x = _activate(raw[base + j] + by[j], alpha)
            if x > rmax:
                rmax = x
    rmax = _block_max(buf, t, rmax)
    z = _ZERO
    a = _ZERO
    b = _ZERO
    gp = _ZERO
    for j in range(t, C, ROW_THREADS):
        if j != i:
            rj = _activate(raw[base + j] + by[j], alpha)
            e = math.exp(rj - rmax)
            sig = _ONE / (_ONE + math.exp(rj - r_pos))
            z += e
            a += e * sig
            b += e * rj * rj
            gp += e * sig * (_ONE - sig)
    z, a, b, gp = _block_sum4(sums, t, z, a, b, gp)
    inv_z = _ONE / z
    big_a = a * inv_z
    big_b = b * inv_z
    inv_a = _ONE / (big_a + _EPS_LOG)
    for j in range(t, C, ROW_THREADS):
        s = raw[base + j] + by[j]
        if j == i:
            g = -gp * inv_z * inv_a
        else:
            rj = _activate(s, alpha)
            sj = math.exp(rj - rmax) * inv_z
            sig = _ONE / (_ONE + math.exp(rj - r_pos))
            g = -sj * (sig * sig - big_a) * inv_a + bpreg * sj * (rj * rj - big_b + _TWO * rj)
        dscores[base + j] = g * _slope(s, alpha) * row_weight
    if t == 0:
        row_loss[i] = -math.log(big_a + _EPS_LOG) + bpreg * big_b


@cuda.jit
def column_sums(dscores, M, C, dbias, row_loss, loss_sum):
    """dbias_j = sum_i dscores_ij (a grid-stride loop over j); thread 0 also adds sum_i row_loss_i to
    loss_sum[0] (float64)."""
    for j in range(cuda.grid(1), C, cuda.gridsize(1)):
        s = _ZERO
        for i in range(M):
            s += dscores[i * C + j]
        dbias[j] = s
    if cuda.grid(1) == 0:
        total = 0.0
        for i in range(M):
            total += row_loss[i]
        loss_sum[0] += total


KERNELS = SimpleNamespace(xe_rows=xe_rows, bprmax_rows=bprmax_rows, column_sums=column_sums)


def launch_xe(raw, dscores, M, C, by, log_q, logq, elu_alpha, row_weight, dbias, row_loss, loss_sum, stream,
              kernels=KERNELS):
    """Kernel arrays: raw, dscores flat (>= M*C) float32 (may be the same array); by, log_q, dbias (>= C)
    float32; row_loss (>= M) float32; loss_sum (1,) float64, added to. ``kernels``: KERNELS, or their
    ``cuda_interop.fixed_types`` for a call site with fixed argument types."""
    kernels.xe_rows[M, ROW_THREADS, stream](raw, dscores, C, by, log_q, np.float32(logq), np.float32(elu_alpha),
                                            np.float32(row_weight), row_loss)
    kernels.column_sums[blocks(C, FLAT_THREADS), FLAT_THREADS, stream](dscores, M, C, dbias, row_loss, loss_sum)


def launch_bprmax(raw, dscores, M, C, by, bpreg, elu_alpha, row_weight, dbias, row_loss, loss_sum, stream,
                  kernels=KERNELS):
    """As ``launch_xe``, for BPR-max."""
    kernels.bprmax_rows[M, ROW_THREADS, stream](raw, dscores, C, by, np.float32(bpreg), np.float32(elu_alpha),
                                                np.float32(row_weight), row_loss)
    kernels.column_sums[blocks(C, FLAT_THREADS), FLAT_THREADS, stream](dscores, M, C, dbias, row_loss, loss_sum)
