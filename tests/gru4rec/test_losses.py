"""Each loss against a naive, loop-by-loop transcription of the spec's formula (§4) on small matrices; the
gradients against finite differences; the Numba twins and the torch reference against the numpy reference."""
import math

import numpy as np
import pytest
import torch

from backend.gru4rec.reference_step import bprmax_loss, xe_loss
from backend.kernels import training_cpu as ops_cpu
from backend.kernels import training_reference as ops_reference


def _act(s, alpha):
    return s if alpha == 0 or s > 0 else alpha * (math.exp(s) - 1)


def naive_xe(raw, by, log_q, logq, alpha):
    """sum_i -log(softmax(act(raw_i + by) - logq log_q)_i + 1e-24)"""
    M, C = raw.shape
    total = 0.0
    for i in range(M):
        r = [_act(float(raw[i, j] + by[j]), alpha) - logq * float(log_q[j]) for j in range(C)]
        denom = sum(math.exp(x) for x in r)
        total += -math.log(math.exp(r[i]) / denom + 1e-24)
    return total


def naive_bprmax(raw, by, bpreg, alpha):
    """sum_i -log(sum_{j!=i} s_ij sigmoid(r_ii - r_ij) + 1e-24) + bpreg sum_{j!=i} s_ij r_ij^2"""
    M, C = raw.shape
    total = 0.0
    for i in range(M):
        r = [_act(float(raw[i, j] + by[j]), alpha) for j in range(C)]
        others = [j for j in range(C) if j != i]
        denom = sum(math.exp(r[j]) for j in others)
        s = {j: math.exp(r[j]) / denom for j in others}
        ranked = sum(s[j] / (1 + math.exp(-(r[i] - r[j]))) for j in others)
        total += -math.log(ranked + 1e-24) + bpreg * sum(s[j] * r[j] ** 2 for j in others)
    return total


def _block(seed, M=4, S=5, scale=2.0):
    rng = np.random.default_rng(seed)
    C = M + S
    raw = rng.normal(0, scale, (M, C)).astype(np.float32)
    by = rng.normal(0, 0.5, C).astype(np.float32)
    log_q = np.log(rng.integers(1, 50, C)).astype(np.float32)
    return raw, by, log_q


XE_CASES = [(1.0, 0.0), (0.0, 0.0), (0.5, 1.0)]       # (logq, elu alpha)
BPR_CASES = [(0.0, 0.0), (0.9, 1.0), (1.95, 0.5)]     # (bpreg, elu alpha)


def _run(fn, raw, *args):
    """The loss and the gradient of the mean row loss (row weight 1 / M)."""
    M, C = raw.shape
    ds, db = np.zeros((M, C), np.float32), np.zeros(C, np.float32)
    loss = fn(raw, *args, 1.0 / M, ds, db)
    return loss, ds, db


@pytest.mark.parametrize("logq,alpha", XE_CASES)
@pytest.mark.parametrize("ops", [ops_reference, ops_cpu], ids=["numpy", "numba"])
def test_xe_loss_matches_naive_formula(ops, logq, alpha):
    raw, by, log_q = _block(1)
    loss, ds, db = _run(ops.sampled_xe_loss_grad, raw, by, log_q, logq, alpha)
    assert loss == pytest.approx(naive_xe(raw, by, log_q, logq, alpha), rel=1e-5)
    M = raw.shape[0]
    fd = _finite_differences(lambda x: naive_xe(x, by, log_q, logq, alpha) / M, raw)
    np.testing.assert_allclose(ds, fd, rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(db, ds.sum(axis=0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bpreg,alpha", BPR_CASES)
@pytest.mark.parametrize("ops", [ops_reference, ops_cpu], ids=["numpy", "numba"])
def test_bprmax_loss_matches_naive_formula(ops, bpreg, alpha):
    raw, by, _ = _block(2, scale=1.0)
    loss, ds, db = _run(ops.sampled_bprmax_loss_grad, raw, by, bpreg, alpha)
    assert loss == pytest.approx(naive_bprmax(raw, by, bpreg, alpha), rel=1e-5)
    M = raw.shape[0]
    fd = _finite_differences(lambda x: naive_bprmax(x, by, bpreg, alpha) / M, raw)
    np.testing.assert_allclose(ds, fd, rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(db, ds.sum(axis=0), rtol=1e-5, atol=1e-7)


def _finite_differences(f, x, h=1e-4):
    x = x.astype(np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        out[idx] = (f(up) - f(down)) / (2 * h)
    return out


def test_bprmax_excludes_the_target_from_its_softmax():
    """Spec §9 mistake 4: the target must not be among its own negatives. A row whose only other column
    scores far lower has a loss near 0, whatever the target's own score."""
    raw = np.array([[5.0, -20.0], [-20.0, 5.0]], np.float32)
    loss, _, _ = _run(ops_cpu.sampled_bprmax_loss_grad, raw, np.zeros(2, np.float32), 0.0, 0.0)
    assert loss == pytest.approx(0.0, abs=1e-6)


def test_xe_is_one_softmax_not_two():
    """Spec §9 mistake 3: with two columns scored 0 and log 3, the target's probability is 1/4."""
    raw = np.array([[0.0, math.log(3.0)]], np.float32)
    loss, _, _ = _run(ops_cpu.sampled_xe_loss_grad, raw, np.zeros(2, np.float32), np.zeros(2, np.float32),
                      0.0, 0.0)
    assert loss == pytest.approx(math.log(4.0), rel=1e-6)


@pytest.mark.parametrize("ops", [ops_reference, ops_cpu], ids=["numpy", "numba"])
def test_big_blocks_agree_with_the_reference(ops):
    """Realistic shapes and scales (a step of the Diginetica preset), both losses."""
    rng = np.random.default_rng(5)
    M, C = 128, 128 + 300
    raw = rng.normal(0, 3, (M, C)).astype(np.float32)
    by = rng.normal(0, 1, C).astype(np.float32)
    log_q = rng.normal(0, 3, C).astype(np.float32)
    for args in ((ops_reference.sampled_xe_loss_grad, ops.sampled_xe_loss_grad, (by, log_q, 1.0, 0.0)),
                 (ops_reference.sampled_bprmax_loss_grad, ops.sampled_bprmax_loss_grad, (by, 0.9, 1.0))):
        ref_fn, fn, rest = args
        l_ref, ds_ref, db_ref = _run(ref_fn, raw, *rest)
        loss, ds, db = _run(fn, raw, *rest)
        assert loss == pytest.approx(l_ref, rel=1e-5)
        np.testing.assert_allclose(ds, ds_ref, rtol=1e-3, atol=1e-8)
        np.testing.assert_allclose(db, db_ref, rtol=1e-3, atol=1e-7)


def test_one_row_without_negatives_has_no_loss():
    raw = np.array([[1.5]], np.float32)
    for ops in (ops_reference, ops_cpu):
        loss, ds, _ = _run(ops.sampled_bprmax_loss_grad, raw, np.zeros(1, np.float32), 1.0, 1.0)
        assert loss == 0.0 and not ds.any()


@pytest.mark.parametrize("logq,alpha", XE_CASES)
def test_torch_reference_losses_match_naive_formulas(logq, alpha):
    raw, by, log_q = _block(3)
    r = torch.from_numpy(raw) + torch.from_numpy(by)
    if alpha:
        r = torch.nn.functional.elu(r, alpha=alpha)
    assert float(xe_loss(r, torch.from_numpy(log_q), logq).sum()) == pytest.approx(
        naive_xe(raw, by, log_q, logq, alpha), rel=1e-5)
    for bpreg, _ in BPR_CASES:
        assert float(bprmax_loss(r, bpreg).sum()) == pytest.approx(naive_bprmax(raw, by, bpreg, alpha), rel=1e-5)


# --- the served-setting option mask_seen: columns left out of a row's negatives ---

def naive_masked(kind, raw, by, log_q, logq_or_bpreg, alpha, weight, mask):
    """weight * sum_i L_i with row i's columns j (mask[i, j] == 1, j != i) dropped from the row, loop by loop."""
    M, C = raw.shape
    total = 0.0
    for i in range(M):
        cols = [j for j in range(C) if j == i or mask[i, j] == 0]
        if kind == "xe":
            r = {j: _act(float(raw[i, j] + by[j]), alpha) - logq_or_bpreg * float(log_q[j]) for j in cols}
            loss = -math.log(math.exp(r[i]) / sum(math.exp(x) for x in r.values()) + 1e-24)
        else:
            r = {j: _act(float(raw[i, j] + by[j]), alpha) for j in cols}
            others = [j for j in cols if j != i]
            if not others:
                continue
            denom = sum(math.exp(r[j]) for j in others)
            s = {j: math.exp(r[j]) / denom for j in others}
            loss = (-math.log(sum(s[j] / (1 + math.exp(-(r[i] - r[j]))) for j in others) + 1e-24)
                    + logq_or_bpreg * sum(s[j] * r[j] ** 2 for j in others))
        total += weight * loss
    return total


def _mask(seed, M, C):
    mask = (np.random.default_rng(seed).random((M, C)) < 0.4).astype(np.uint8)
    mask[np.arange(M), np.arange(M)] = 1          # the target column is never left out, whatever the mask says
    return mask


MASKED_CASES = [("xe", 1.0, 0.0), ("xe", 0.5, 1.0), ("bpr", 0.9, 1.0), ("bpr", 0.0, 0.5)]


def _masked_fn(ops, kind):
    return ops.sampled_xe_loss_grad_masked if kind == "xe" else ops.sampled_bprmax_loss_grad_masked


def _run_masked(ops, kind, raw, by, log_q, coef, alpha, weight, mask):
    M, C = raw.shape
    ds, db = np.zeros((M, C), np.float32), np.zeros(C, np.float32)
    args = (log_q, coef) if kind == "xe" else (coef,)
    loss = _masked_fn(ops, kind)(raw, by, *args, alpha, weight, mask, ds, db)
    return loss, ds, db


@pytest.mark.parametrize("kind,coef,alpha", MASKED_CASES)
@pytest.mark.parametrize("ops", [ops_reference, ops_cpu], ids=["numpy", "numba"])
def test_masked_losses_match_naive_formulas(ops, kind, coef, alpha):
    raw, by, log_q = _block(7, M=5, S=4, scale=1.0)
    M, C = raw.shape
    mask = _mask(8, M, C)
    mask[3, :] = 1                                 # row 3: no negative left (BPR-max: no loss)
    loss, ds, db = _run_masked(ops, kind, raw, by, log_q, coef, alpha, 1.0 / M, mask)
    assert loss == pytest.approx(naive_masked(kind, raw, by, log_q, coef, alpha, 1.0, mask), rel=1e-5)
    fd = _finite_differences(lambda x: naive_masked(kind, x, by, log_q, coef, alpha, 1.0 / M, mask), raw)
    np.testing.assert_allclose(ds, fd, rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(db, ds.sum(axis=0), rtol=1e-5, atol=1e-6)
    off = (mask == 1) & ~np.eye(M, C, dtype=bool)
    assert not ds[off].any()                        # a left-out column gets no gradient from its row


@pytest.mark.parametrize("kind,coef,alpha", MASKED_CASES)
def test_masked_losses_without_mask_are_the_plain_ones(kind, coef, alpha):
    raw, by, log_q = _block(9, M=6, S=7)
    M, C = raw.shape
    loss, ds, db = _run_masked(ops_cpu, kind, raw, by, log_q, coef, alpha, 1.0 / M, np.zeros((M, C), np.uint8))
    plain = ops_cpu.sampled_xe_loss_grad if kind == "xe" else ops_cpu.sampled_bprmax_loss_grad
    l0, ds0, db0 = _run(plain, raw, by, *((log_q, coef) if kind == "xe" else (coef,)), alpha)
    assert loss == pytest.approx(l0, rel=1e-6)
    np.testing.assert_allclose(ds, ds0, rtol=1e-5, atol=1e-8)


def test_seen_mask_numba_matches_numpy():
    rng = np.random.default_rng(3)
    items = rng.integers(0, 12, 40).astype(np.int32)
    pair_start = np.array([0, 0, 5, 9, 9, 20], np.int64)
    pair_event = np.array([0, 3, 8, 9, 14, 30], np.int64)
    Y = np.concatenate([items[pair_event + 1], rng.integers(0, 12, 9)]).astype(np.int64)
    out = {}
    for name, ops in (("numpy", ops_reference), ("numba", ops_cpu)):
        mask = np.zeros((6, len(Y)), np.uint8)
        token = ops.seen_mask(items, pair_start, pair_event, Y, mask, np.full(12, -1, np.int64), 0)
        out[name] = (mask, token)
    np.testing.assert_array_equal(out["numpy"][0], out["numba"][0])
    assert out["numba"][1] == 6 and out["numpy"][0].any()
    for r in range(6):
        seen = set(items[pair_start[r]:pair_event[r] + 1].tolist())
        assert out["numba"][0][r].tolist() == [int(c != r and Y[c] in seen) for c in range(len(Y))]
