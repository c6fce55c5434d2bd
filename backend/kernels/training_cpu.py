"""Numba CPU twins of ``training_reference`` (same names, same signatures, same results up to float rounding).

Serial kernels (the BLAS calls around them use the cores); float32 inner loops with the vectorisable
``exp32`` so that LLVM emits AVX-512 code. ``error_model="numpy"`` matters: with Numba's default (Python's
ZeroDivisionError check on every float division) no loop that divides is vectorised.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from backend.kernels.fastmath import exp32, sigmoid32

EPS_LOG = 1e-24
EPS_ADAGRAD = np.float32(1e-6)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_ZERO = np.float32(0.0)

_jit = njit(fastmath=True, error_model="numpy", cache=True, nogil=True)


@njit(inline="always", fastmath=True, error_model="numpy")
def _tanh32(x):
    return _ONE - _TWO / (_ONE + exp32(_TWO * x))


@njit(inline="always", fastmath=True, error_model="numpy")
def _activate_row(raw_row, by, alpha, r, dact):
    """r = act(raw_row + by), dact = its derivative; elu-alpha, or linear when alpha == 0."""
    C = len(by)
    if alpha > _ZERO:
        for j in range(C):
            s = raw_row[j] + by[j]
            e = alpha * (exp32(min(s, _ZERO)) - _ONE)
            pos = s > _ZERO
            r[j] = s if pos else e
            dact[j] = _ONE if pos else e + alpha
    else:
        for j in range(C):
            r[j] = raw_row[j] + by[j]
            dact[j] = _ONE


@_jit
def sampled_xe_loss_grad(raw, by, log_q, logq, elu_alpha, row_weight, dscores, dbias):
    M, C = raw.shape
    alpha = np.float32(elu_alpha)
    lq = np.float32(logq)
    w_row = np.float32(row_weight)
    r = np.empty(C, np.float32)
    dact = np.empty(C, np.float32)
    dbias[:] = _ZERO
    total = 0.0
    for i in range(M):
        g = dscores[i]
        _activate_row(raw[i], by, alpha, r, dact)
        rmax = np.float32(-np.inf)
        for j in range(C):
            x = r[j] - lq * log_q[j]
            r[j] = x
            rmax = x if x > rmax else rmax     # (the max() builtin does not vectorise)
        z = _ZERO
        for j in range(C):
            e = exp32(r[j] - rmax)
            g[j] = e
            z += e
        p_pos = g[i] / z
        total += -np.log(p_pos + EPS_LOG)
        c = np.float32(p_pos / (p_pos + EPS_LOG))
        scale = c * w_row / z
        g[i] -= z                          # the loop below then gives c/M (p_ii - 1) at the diagonal
        for j in range(C):
            gj = g[j] * scale * dact[j]
            g[j] = gj
            dbias[j] += gj
    return total


@_jit
def sampled_bprmax_loss_grad(raw, by, bpreg, elu_alpha, row_weight, dscores, dbias):
    # Loops run over all columns and zero the diagonal with a select: a loop over a range that starts at a
    # variable ([i+1, C)) is not vectorised by Numba/LLVM, which made this kernel 5x slower.
    M, C = raw.shape
    alpha = np.float32(elu_alpha)
    reg = np.float32(bpreg)
    w_row = np.float32(row_weight)
    r = np.empty(C, np.float32)
    dact = np.empty(C, np.float32)
    sig_buf = np.empty(C, np.float32)
    neg_inf = np.float32(-np.inf)
    dbias[:] = _ZERO
    total = 0.0
    if C == 1:
        dscores[:] = _ZERO
        return total
    for i in range(M):
        g = dscores[i]                     # holds exp(r_j - rmax) first, then the gradient
        _activate_row(raw[i], by, alpha, r, dact)
        r_pos = r[i]
        rmax = neg_inf                     # max over j != i
        for j in range(C):
            x = r[j] if j != i else neg_inf
            rmax = x if x > rmax else rmax
        # softmax over j != i: e_j = exp(r_j - rmax); sigmoid(r_pos - r_j) = 1 / (1 + e_j exp(rmax - r_pos))
        k = exp32(rmax - r_pos)
        z = _ZERO
        a_sum = _ZERO
        b_sum = _ZERO
        for j in range(C):
            rj = r[j]
            e = exp32(rj - rmax) if j != i else _ZERO
            sig = _ONE / (_ONE + e * k)
            g[j] = e
            sig_buf[j] = sig
            z += e
            a_sum += e * sig
            b_sum += e * rj * rj
        A = a_sum / z
        B = b_sum / z
        total += -np.log(A + EPS_LOG) + reg * B
        inv_a = np.float32(1.0 / (A + EPS_LOG))
        inv_z = _ONE / z
        # d/dr_j (j != i) = -s_j (sig_j^2 - A) / A + bpreg s_j (r_j^2 - B + 2 r_j);  s_i = 0 here
        # d/dr_i = -sum_j s_j sig_j (1 - sig_j) / A
        g_pos = _ZERO
        for j in range(C):
            sj = g[j] * inv_z
            sig = sig_buf[j]
            rj = r[j]
            g_pos += sj * sig * (_ONE - sig)
            g[j] = (-sj * (sig * sig - A) * inv_a + reg * sj * (rj * rj - B + _TWO * rj)) * dact[j] * w_row
        gi = -g_pos * inv_a * dact[i] * w_row
        g[i] = gi
        for j in range(C):
            dbias[j] += g[j]
    return total


@_jit
def adagrad_momentum_rows(param, acc, vel, rows, grads, lr, momentum, row_slot):
    K, D = grads.shape
    lr32 = np.float32(lr)
    mom = np.float32(momentum)
    # sum duplicates into the row's first occurrence
    for k in range(K):
        row = rows[k]
        first = row_slot[row]
        if first < 0:
            row_slot[row] = k
        else:
            for d in range(D):
                grads[first, d] += grads[k, d]
    for k in range(K):
        row = rows[k]
        if row_slot[row] != k:
            continue
        p = param[row]
        a = acc[row]
        g = grads[k]
        if mom > _ZERO:
            v = vel[row]
            for d in range(D):
                a[d] += g[d] * g[d]
                v[d] = mom * v[d] - lr32 * g[d] / np.sqrt(a[d] + EPS_ADAGRAD)
                p[d] += v[d]
        else:
            for d in range(D):
                a[d] += g[d] * g[d]
                p[d] -= lr32 * g[d] / np.sqrt(a[d] + EPS_ADAGRAD)
    for k in range(K):
        row_slot[rows[k]] = -1


@_jit
def _adagrad_flat(p, a, v, g, lr, momentum):
    lr32 = np.float32(lr)
    mom = np.float32(momentum)
    if mom > _ZERO:
        for i in range(p.size):
            a[i] += g[i] * g[i]
            v[i] = mom * v[i] - lr32 * g[i] / np.sqrt(a[i] + EPS_ADAGRAD)
            p[i] += v[i]
    else:
        for i in range(p.size):
            a[i] += g[i] * g[i]
            p[i] -= lr32 * g[i] / np.sqrt(a[i] + EPS_ADAGRAD)


def adagrad_momentum_dense(param, acc, vel, grad, lr, momentum) -> None:
    _adagrad_flat(param.reshape(-1), acc.reshape(-1), vel.reshape(-1), grad.reshape(-1), lr, momentum)


@_jit
def draw_popularity_samples(cdf, uniforms, out):
    """Inverse CDF with a guide table (bucket b of [0, 1) starts its search at the first item whose cumulative
    weight exceeds b / n_buckets): O(1) expected per draw, and exactly searchsorted's answer."""
    n_items = len(cdf)
    total = cdf[-1]
    n_buckets = n_items
    guide = np.empty(n_buckets, np.int64)
    i = 0
    for b in range(n_buckets):
        x = (b / n_buckets) * total
        while i < n_items - 1 and cdf[i] <= x:
            i += 1
        guide[b] = i
    for k in range(len(uniforms)):
        u = uniforms[k]
        x = u * total
        i = guide[min(int(u * n_buckets), n_buckets - 1)]
        while i > 0 and cdf[i - 1] > x:
            i -= 1
        while i < n_items - 1 and cdf[i] <= x:
            i += 1
        out[k] = i


@_jit
def gather_rows(matrix, rows, out):
    """out[k] = matrix[rows[k]]; matrix (N, D), rows (K,), out (K, D)."""
    D = matrix.shape[1]
    for k in range(len(rows)):
        src = matrix[rows[k]]
        dst = out[k]
        for d in range(D):
            dst[d] = src[d]


@_jit
def gather_states(prev_out, src, h):
    M, H = h.shape
    for i in range(M):
        s = src[i]
        if s >= 0:
            h[i] = prev_out[s]
        else:
            h[i] = _ZERO


@_jit
def gru_gates(a, b, g, h, r, z, rh):
    M, H = h.shape
    for i in range(M):
        for k in range(3 * H):
            a[i, k] += b[k]
        for k in range(H):
            rk = sigmoid32(a[i, k] + g[i, k])
            r[i, k] = rk
            z[i, k] = sigmoid32(a[i, H + k] + g[i, H + k])
            rh[i, k] = rk * h[i, k]


@_jit
def gru_output(a, cand, h, z, mask, n, out):
    M, H = h.shape
    masked = mask.size > 0
    for i in range(M):
        for k in range(H):
            nk = _tanh32(a[i, 2 * H + k] + cand[i, k])
            n[i, k] = nk
            zk = z[i, k]
            o = zk * h[i, k] + (_ONE - zk) * nk
            out[i, k] = o * mask[i, k] if masked else o


@_jit
def gru_backward_gates(dout, mask, h, z, n, da):
    M, H = h.shape
    masked = mask.size > 0
    for i in range(M):
        for k in range(H):
            d = dout[i, k] * mask[i, k] if masked else dout[i, k]
            zk = z[i, k]
            nk = n[i, k]
            da[i, 2 * H + k] = d * (_ONE - zk) * (_ONE - nk * nk)
            da[i, H + k] = d * (h[i, k] - nk) * zk * (_ONE - zk)


@_jit
def gru_backward_reset(d_rh, h, r, da):
    M, H = h.shape
    for i in range(M):
        for k in range(H):
            rk = r[i, k]
            da[i, k] = d_rh[i, k] * h[i, k] * rk * (_ONE - rk)


# --- the served-setting training option (mask_seen): twins of training_reference's ``*_masked`` and ``seen_mask``

@_jit
def sampled_xe_loss_grad_masked(raw, by, log_q, logq, elu_alpha, row_weight, mask, dscores, dbias):
    M, C = raw.shape
    alpha = np.float32(elu_alpha)
    lq = np.float32(logq)
    r = np.empty(C, np.float32)
    dact = np.empty(C, np.float32)
    dbias[:] = _ZERO
    total = 0.0
    w_row = np.float32(row_weight)
    for i in range(M):
        g = dscores[i]
        m = mask[i]
        _activate_row(raw[i], by, alpha, r, dact)
        rmax = r[i] - lq * log_q[i]               # the target column is always in
        for j in range(C):
            x = r[j] - lq * log_q[j]
            r[j] = x
            x = x if m[j] == 0 else rmax
            rmax = x if x > rmax else rmax
        z = _ZERO
        for j in range(C):
            e = exp32(r[j] - rmax)
            e = e if (m[j] == 0 or j == i) else _ZERO
            g[j] = e
            z += e
        p_pos = g[i] / z
        total += -np.log(p_pos + EPS_LOG)
        c = np.float32(p_pos / (p_pos + EPS_LOG))
        scale = c * w_row / z
        g[i] -= z
        for j in range(C):
            gj = g[j] * scale * dact[j]
            g[j] = gj
            dbias[j] += gj
    return total


@_jit
def sampled_bprmax_loss_grad_masked(raw, by, bpreg, elu_alpha, row_weight, mask, dscores, dbias):
    M, C = raw.shape
    alpha = np.float32(elu_alpha)
    reg = np.float32(bpreg)
    r = np.empty(C, np.float32)
    dact = np.empty(C, np.float32)
    sig_buf = np.empty(C, np.float32)
    dbias[:] = _ZERO
    total = 0.0
    w_row = np.float32(row_weight)
    for i in range(M):
        g = dscores[i]
        m = mask[i]
        _activate_row(raw[i], by, alpha, r, dact)
        r_pos = r[i]
        n_neg = 0
        rmax = _ZERO
        for j in range(C):                 # max over the negatives (j != i, not masked)
            if j != i and m[j] == 0:
                rmax = r[j] if (n_neg == 0 or r[j] > rmax) else rmax
                n_neg += 1
        if n_neg == 0:                     # nothing to rank against: no loss, no gradient
            for j in range(C):
                g[j] = _ZERO
            continue
        k = exp32(rmax - r_pos)
        z = _ZERO
        a_sum = _ZERO
        b_sum = _ZERO
        for j in range(C):
            rj = r[j]
            e = exp32(rj - rmax) if (j != i and m[j] == 0) else _ZERO
            sig = _ONE / (_ONE + e * k)
            g[j] = e
            sig_buf[j] = sig
            z += e
            a_sum += e * sig
            b_sum += e * rj * rj
        A = a_sum / z
        B = b_sum / z
        total += -np.log(A + EPS_LOG) + reg * B
        inv_a = np.float32(1.0 / (A + EPS_LOG))
        inv_z = _ONE / z
        g_pos = _ZERO
        for j in range(C):
            sj = g[j] * inv_z
            sig = sig_buf[j]
            rj = r[j]
            g_pos += sj * sig * (_ONE - sig)
            g[j] = (-sj * (sig * sig - A) * inv_a + reg * sj * (rj * rj - B + _TWO * rj)) * dact[j] * w_row
        g[i] = -g_pos * inv_a * dact[i] * w_row
        for j in range(C):
            dbias[j] += g[j]
    return total


@_jit
def seen_mask(items, pair_start, pair_event, Y, mask, stamp, token):
    """training_reference.seen_mask; ``stamp`` (n_items,) int64 scratch holding values < ``token`` on entry.
    Returns the next free token."""
    M = len(pair_start)
    C = mask.shape[1]
    for r in range(M):
        token += 1
        for q in range(pair_start[r], pair_event[r] + 1):
            stamp[items[q]] = token
        for c in range(C):
            mask[r, c] = 1 if (c != r and stamp[Y[c]] == token) else 0
    return token
