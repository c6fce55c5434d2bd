"""The GRU4Rec training step's hot parts as plain numpy: the reference that ``training_cpu`` (Numba CPU) and
``cuda`` (Numba-CUDA) must reproduce.

Same names and signatures in the three modules. The three parts the GPU trainer moves to kernels are separate
functions: the sampled loss and its gradient (``sampled_xe_loss_grad``,
``sampled_bprmax_loss_grad``; on the CPU the score block ``raw = h @ Wy[Y].T`` comes from BLAS just before),
the row-wise update (``adagrad_momentum_rows``) and the sample store (``draw_popularity_samples``). Conventions:
M rows (active slots), C = M + n_sample score columns (column i is row i's target), float32 arrays.
Loss kernels return the SUM of the row losses and write the gradient of ``row_weight`` * that sum; the
trainer passes row_weight = 1 / batch_size (see gru4rec/loop.py on why the configured size, not the real one).
"""
from __future__ import annotations

import numpy as np

EPS_LOG = 1e-24       # inside the log of both losses (spec §4)
EPS_ADAGRAD = 1e-6    # spec §5


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _final_activation(s: np.ndarray, elu_alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(r, dr/ds): elu-alpha, or linear when elu_alpha == 0."""
    if elu_alpha <= 0:
        return s, np.ones_like(s)
    neg = elu_alpha * np.expm1(np.minimum(s, 0))
    r = np.where(s > 0, s, neg)
    return r, np.where(s > 0, 1.0, neg + elu_alpha)


def sampled_xe_loss_grad(raw, by, log_q, logq, elu_alpha, row_weight, dscores, dbias) -> float:
    """Cross-entropy with logQ correction over the sampled columns.

    raw (M, C) = h @ Wy[Y].T, by (C,) = By[Y], log_q (C,) = log Q_j. Scores s = raw + by, r = act(s),
    r'_ij = r_ij - logq * log_q_j, L_i = -log(softmax(r'_i)_i + 1e-24).
    Writes dscores (M, C) = d (row_weight sum(L)) / d raw and dbias (C,) = its column sums.
    """
    M = raw.shape[0]
    s = raw.astype(np.float64) + by
    r, dact = _final_activation(s, elu_alpha)
    r = r - logq * log_q.astype(np.float64)
    e = np.exp(r - r.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p_pos = p[np.arange(M), np.arange(M)]
    losses = -np.log(p_pos + EPS_LOG)
    g = p * (p_pos / (p_pos + EPS_LOG))[:, None]          # d L_i / d r_ij = c_i (p_ij - delta_ij)
    g[np.arange(M), np.arange(M)] -= p_pos / (p_pos + EPS_LOG)
    g = g * dact * row_weight
    dscores[...] = g
    dbias[...] = g.sum(axis=0)
    return float(losses.sum())


def sampled_bprmax_loss_grad(raw, by, bpreg, elu_alpha, row_weight, dscores, dbias) -> float:
    """BPR-max with score regularisation over the sampled columns.

    s_ij = softmax of r_i over j != i (diagonal masked),
    L_i = -log(sum_j s_ij * sigmoid(r_ii - r_ij) + 1e-24) + bpreg * sum_j s_ij * r_ij^2.
    Writes dscores (M, C) = d (row_weight sum(L)) / d raw and dbias (C,) = its column sums. With no negative at all
    (C == 1) the loss and its gradient are 0.
    """
    M, C = raw.shape
    if C == 1:                                            # one row, no negative: nothing to rank against
        dscores[...] = 0.0
        dbias[...] = 0.0
        return 0.0
    s = raw.astype(np.float64) + by
    r, dact = _final_activation(s, elu_alpha)
    diag = np.zeros((M, C), dtype=bool)
    diag[np.arange(M), np.arange(M)] = True
    r_pos = r[np.arange(M), np.arange(M)][:, None]
    masked = np.where(diag, -np.inf, r)
    e = np.exp(masked - masked.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)                 # 0 on the diagonal
    sig = _sigmoid(r_pos - r)
    A = (sm * sig).sum(axis=1, keepdims=True)
    r2 = np.where(diag, 0.0, r * r)
    B = (sm * r2).sum(axis=1, keepdims=True)
    losses = -np.log(A[:, 0] + EPS_LOG) + bpreg * B[:, 0]
    # d/dr_ij (j != i) = -s_ij (sig_ij^2 - A_i) / (A_i + eps) + bpreg s_ij (r_ij^2 - B_i + 2 r_ij)
    g = -sm * (sig * sig - A) / (A + EPS_LOG) + bpreg * sm * (r2 - B + 2.0 * r)
    # d/dr_ii = -sum_j s_ij sig_ij (1 - sig_ij) / (A_i + eps)
    g_pos = -(sm * sig * (1.0 - sig)).sum(axis=1) / (A[:, 0] + EPS_LOG)
    g[diag] = g_pos
    g = g * dact * row_weight
    dscores[...] = g
    dbias[...] = g.sum(axis=0)
    return float(losses.sum())


def adagrad_momentum_rows(param, acc, vel, rows, grads, lr, momentum, row_slot) -> None:
    """Sparse row update (spec §5) of ``param`` (N, D) at ``rows`` (K,) with ``grads`` (K, D).

    Gradients of duplicate rows are summed first; then for each distinct row:
    acc += g^2 ; v = momentum * v - lr * g / sqrt(acc + 1e-6) ; param += v  (v = the step when momentum == 0,
    and ``vel`` may then be empty). Untouched rows, their momentum included, stay as they are.
    ``grads`` may be overwritten; ``row_slot`` ((N,) int32 of -1) is scratch, left as found.
    """
    uniq, inverse = np.unique(rows, return_inverse=True)
    g = np.zeros((len(uniq), param.shape[1]), dtype=np.float64)
    np.add.at(g, inverse.ravel(), grads)
    a = acc[uniq] + g * g
    acc[uniq] = a
    step = -lr * g / np.sqrt(a + EPS_ADAGRAD)
    if momentum > 0:
        step = momentum * vel[uniq] + step
        vel[uniq] = step
    param[uniq] += step.astype(param.dtype)


def adagrad_momentum_dense(param, acc, vel, grad, lr, momentum) -> None:
    """The same rule for every element of a dense array (any shape); ``vel`` may be empty when momentum == 0."""
    a = acc + grad.astype(np.float64) ** 2
    acc[...] = a
    step = -lr * grad / np.sqrt(a + EPS_ADAGRAD)
    if momentum > 0:
        step = momentum * vel + step
        vel[...] = step
    param += step.astype(param.dtype)


def draw_popularity_samples(cdf, uniforms, out) -> None:
    """Inverse-CDF sampling: ``out[k]`` = the item whose cumulative-weight interval holds
    ``uniforms[k] * cdf[-1]``. cdf (N,) float64 increasing cumulative weights, uniforms (n,) float64 in [0, 1),
    out (n,) int32."""
    idx = np.searchsorted(cdf, uniforms * cdf[-1], side="right")
    out[...] = np.minimum(idx, len(cdf) - 1)


def gather_rows(matrix, rows, out) -> None:
    """out[k] = matrix[rows[k]]; matrix (N, D), rows (K,), out (K, D)."""
    out[...] = matrix[rows]


def gather_states(prev_out, src, h) -> None:
    """h[r] = prev_out[src[r]] for src[r] >= 0, else 0 (a slot that starts a session). h (M, H)."""
    keep = src >= 0
    h[...] = 0.0
    h[keep] = prev_out[src[keep]]


def gru_gates(a, b, g, h, r, z, rh) -> None:
    """a (M, 3H) = x @ Wx gets the bias b added in place; g (M, 2H) = h @ Wrz.
    r = sigmoid(a_r + g_r), z = sigmoid(a_z + g_z), rh = r * h (all (M, H))."""
    H = h.shape[1]
    a += b
    r[...] = _sigmoid(a[:, :H] + g[:, :H])
    z[...] = _sigmoid(a[:, H:2 * H] + g[:, H:])
    rh[...] = r * h


def gru_output(a, cand, h, z, mask, n, out) -> None:
    """n = tanh(a_n + cand) with cand = rh @ Wh; out = (z * h + (1 - z) * n) * mask (no mask when empty)."""
    H = h.shape[1]
    n[...] = np.tanh(a[:, 2 * H:] + cand)
    new = z * h + (1.0 - z) * n
    out[...] = new * mask if mask.size else new


def gru_backward_gates(dout, mask, h, z, n, da) -> None:
    """From dout (M, H) = d loss / d out: da[:, H:2H] = d/d(z pre-activation), da[:, 2H:] = d/d(n pre-act.)."""
    H = h.shape[1]
    dnew = dout * mask if mask.size else dout
    da[:, 2 * H:] = dnew * (1.0 - z) * (1.0 - n * n)
    da[:, H:2 * H] = dnew * (h - n) * z * (1.0 - z)


def gru_backward_reset(d_rh, h, r, da) -> None:
    """From d_rh (M, H) = d loss / d (r * h): da[:, :H] = d/d(r pre-activation)."""
    H = h.shape[1]
    da[:, :H] = d_rh * h * r * (1.0 - r)


# --- the served-setting training option (params.mask_seen); CPU only --------------------------------------------
# The same losses with a mask of columns left out of each row's negatives (``mask`` (M, C) uint8, 1 = left out;
# row i's own target column i is never left out).

def sampled_xe_loss_grad_masked(raw, by, log_q, logq, elu_alpha, row_weight, mask, dscores, dbias) -> float:
    """``sampled_xe_loss_grad`` where row i's softmax runs over the columns j with mask[i, j] == 0 (and i)."""
    M, C = raw.shape
    diag = np.zeros((M, C), dtype=bool)
    diag[np.arange(M), np.arange(M)] = True
    keep = (mask == 0) | diag
    s = raw.astype(np.float64) + by
    r, dact = _final_activation(s, elu_alpha)
    r = r - logq * log_q.astype(np.float64)
    r = np.where(keep, r, -np.inf)
    e = np.exp(r - r.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p_pos = p[np.arange(M), np.arange(M)]
    losses = -np.log(p_pos + EPS_LOG)
    c = p_pos / (p_pos + EPS_LOG)
    g = p * c[:, None]
    g[np.arange(M), np.arange(M)] -= c
    g = g * dact * row_weight
    dscores[...] = g
    dbias[...] = g.sum(axis=0)
    return float(losses.sum())


def sampled_bprmax_loss_grad_masked(raw, by, bpreg, elu_alpha, row_weight, mask, dscores, dbias) -> float:
    """``sampled_bprmax_loss_grad`` where row i's negatives are the columns j != i with mask[i, j] == 0; a row
    with no negative left has loss and gradient 0."""
    M, C = raw.shape
    diag = np.zeros((M, C), dtype=bool)
    diag[np.arange(M), np.arange(M)] = True
    neg = (mask == 0) & ~diag
    has = neg.any(axis=1)
    s = raw.astype(np.float64) + by
    r, dact = _final_activation(s, elu_alpha)
    r_pos = r[np.arange(M), np.arange(M)][:, None]
    masked = np.where(neg, r, -np.inf)
    top = np.where(has[:, None], masked.max(axis=1, keepdims=True), 0.0)
    e = np.exp(masked - top)
    sm = e / np.maximum(e.sum(axis=1, keepdims=True), 1e-300)       # 0 outside the negatives
    sig = _sigmoid(r_pos - r)
    A = (sm * sig).sum(axis=1, keepdims=True)
    r2 = np.where(neg, r * r, 0.0)
    B = (sm * r2).sum(axis=1, keepdims=True)
    losses = np.where(has, -np.log(A[:, 0] + EPS_LOG) + bpreg * B[:, 0], 0.0)
    g = -sm * (sig * sig - A) / (A + EPS_LOG) + bpreg * sm * (r2 - B + 2.0 * r)
    g = np.where(neg, g, 0.0)
    g_pos = -(sm * sig * (1.0 - sig)).sum(axis=1) / (A[:, 0] + EPS_LOG)
    g[diag] = np.where(has, g_pos, 0.0)
    g = g * dact * row_weight
    dscores[...] = g
    dbias[...] = g.sum(axis=0)
    return float(losses.sum())


def seen_mask(items, pair_start, pair_event, Y, mask, stamp, token) -> int:
    """For the step's rows (pairs) r: the session's items so far are ``items[pair_start[r]:pair_event[r] + 1]``
    (the input item last). mask[r, c] = 1 where column c's item Y[c] is one of them (c != r). ``stamp`` and
    ``token``: the Numba twin's scratch (unused here); returns token + M as the twin does."""
    M = len(pair_start)
    for r in range(M):
        seen = set(items[pair_start[r]:pair_event[r] + 1].tolist())
        mask[r] = [1 if (c != r and int(Y[c]) in seen) else 0 for c in range(mask.shape[1])]
    return token + M
