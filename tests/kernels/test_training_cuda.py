"""The Numba-CUDA training kernels (backend/kernels/training_cuda.py) give the numpy reference's results and the Numba CPU
twin's, on tiny shapes (under the CUDA simulator in `make test`; on the GPU in tests/bench/gpu_check.sh)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.cuda import host, quick_thread_switches, skip_without_cuda, to_kernel  # noqa: F401

skip_without_cuda()

from backend.kernels import training_cpu  # noqa: E402
from backend.kernels import training_cuda as kc  # noqa: E402
from backend.kernels import training_reference
from backend.kernels.cuda_interop import ROW_THREADS, SIMULATOR, device_zeros, kernel_array, launch_stream  # noqa: E402
from backend.kernels.cuda_loss import launch_bprmax, launch_xe  # noqa: E402

XE_CASES = [(1.0, 0.0), (0.0, 0.0), (0.5, 1.0)]       # (logq, elu alpha)
BPR_CASES = [(0.0, 0.0), (0.9, 1.0), (1.95, 0.5)]     # (bpreg, elu alpha)


def _block(seed, M=4, S=5, scale=2.0):
    rng = np.random.default_rng(seed)
    C = M + S
    raw = rng.normal(0, scale, (M, C)).astype(np.float32)
    by = rng.normal(0, 0.5, C).astype(np.float32)
    log_q = np.log(rng.integers(1, 50, C)).astype(np.float32)
    return raw, by, log_q


def _run_host(fn, raw, *args):
    M, C = raw.shape
    ds, db = np.zeros((M, C), np.float32), np.zeros(C, np.float32)
    return fn(raw.copy(), *args, 1.0 / M, ds, db), ds, db


def _run_cuda(fn, raw, *args, in_place=False):
    M, C = raw.shape
    raw_k = to_kernel(raw)
    ds_k = raw_k if in_place else to_kernel(np.zeros((M, C), np.float32))
    db_k = to_kernel(np.zeros(C, np.float32))
    args = [to_kernel(a) if isinstance(a, np.ndarray) else a for a in args]
    loss = fn(raw_k, *args, 1.0 / M, ds_k, db_k)
    return loss, host(ds_k), host(db_k)


def _agree(got, want, rtol=1e-4, loss_rtol=1e-5, atol_scale=1e-7):
    loss, ds, db = got
    assert loss == pytest.approx(want[0], rel=loss_rtol)
    atol = atol_scale * max(1.0, np.abs(want[1]).max())  # float32 cancellation in the small entries
    np.testing.assert_allclose(ds, want[1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(db, want[2], rtol=rtol, atol=atol)


@pytest.mark.parametrize("logq,alpha", XE_CASES)
def test_xe_kernel_matches_reference_and_cpu_twin(logq, alpha):
    raw, by, log_q = _block(1, S=ROW_THREADS + 5)
    assert raw.shape[1] > ROW_THREADS                    # each thread handles several columns
    want = _run_host(training_reference.sampled_xe_loss_grad, raw, by, log_q, logq, alpha)
    _agree(_run_host(training_cpu.sampled_xe_loss_grad, raw, by, log_q, logq, alpha), want)
    _agree(_run_cuda(kc.sampled_xe_loss_grad, raw, by, log_q, logq, alpha), want)


@pytest.mark.parametrize("bpreg,alpha", BPR_CASES)
def test_bprmax_kernel_matches_reference_and_cpu_twin(bpreg, alpha):
    raw, by, _ = _block(2, scale=1.0)
    want = _run_host(training_reference.sampled_bprmax_loss_grad, raw, by, bpreg, alpha)
    _agree(_run_host(training_cpu.sampled_bprmax_loss_grad, raw, by, bpreg, alpha), want)
    _agree(_run_cuda(kc.sampled_bprmax_loss_grad, raw, by, bpreg, alpha), want)


def test_gradient_may_overwrite_the_scores():
    """The GPU step lets the kernels write the gradient over the score block (one matrix, not two)."""
    raw, by, log_q = _block(3)
    for fn, args in ((kc.sampled_xe_loss_grad, (by, log_q, 1.0, 1.0)), (kc.sampled_bprmax_loss_grad, (by, 0.9, 1.0))):
        _agree(_run_cuda(fn, raw, *args, in_place=True), _run_cuda(fn, raw, *args))


def test_extreme_scores_stay_finite_and_agree():
    """Scores 40 apart: exp overflows in a naive sigmoid or softmax; the kernels must still agree (as closely as
    float32 allows: the CPU twin is off by 5e-5 of the largest entry here)."""
    raw, by, log_q = _block(4, scale=40.0)
    for name, args in (("sampled_xe_loss_grad", (by, log_q, 1.0, 0.0)), ("sampled_bprmax_loss_grad", (by, 1.0, 1.0))):
        want = _run_host(getattr(training_reference, name), raw, *args)
        got = _run_cuda(getattr(kc, name), raw, *args)
        assert np.isfinite(got[0]) and np.isfinite(got[1]).all()
        _agree(got, want, rtol=2e-3, loss_rtol=1e-4, atol_scale=1e-6)


def test_one_row_without_negatives_has_no_loss():
    loss, ds, db = _run_cuda(kc.sampled_bprmax_loss_grad, np.array([[1.5]], np.float32), np.zeros(1, np.float32),
                             1.0, 1.0)
    assert loss == 0.0 and not ds.any() and not db.any()


def test_step_buffers_prefix_and_loss_accumulator():
    """As the GPU step calls them: a flat buffer sized for a full batch, M * C of it used, the bias gradient and
    the loss added to a device accumulator over launches. Nothing past the block is touched."""
    raw, by, log_q = _block(5, M=3, S=4)
    M, C = raw.shape
    buf = np.full(5 * 11, 7.0, np.float32)
    buf[:M * C] = raw.ravel()
    k_buf, k_by, k_lq = to_kernel(buf), to_kernel(np.r_[by, [9.0, 9.0]]), to_kernel(np.r_[log_q, [9.0, 9.0]])
    k_db, k_rows, k_sum = to_kernel(np.zeros(11, np.float32)), to_kernel(np.zeros(5, np.float32)), \
        device_zeros(1, np.float64)
    launch_xe(k_buf, k_buf, M, C, k_by, k_lq, 1.0, 0.0, 1.0 / 5, k_db, k_rows, k_sum, launch_stream())
    got = host(k_buf)
    loss, ds, db = _run_host(training_reference.sampled_xe_loss_grad, raw, by, log_q, 1.0, 0.0)
    np.testing.assert_allclose(got[:M * C].reshape(M, C), ds * M / 5, rtol=1e-4, atol=1e-7)
    assert (got[M * C:] == 7.0).all()
    np.testing.assert_allclose(host(k_db)[:C], db * M / 5, rtol=1e-4, atol=1e-7)
    k_buf = to_kernel(buf)
    launch_bprmax(k_buf, k_buf, M, C, k_by, 0.5, 1.0, 1.0 / 5, k_db, k_rows, k_sum, launch_stream())
    bpr_loss = _run_host(training_reference.sampled_bprmax_loss_grad, raw, by, 0.5, 1.0)[0]
    assert host(k_sum)[0] == pytest.approx(loss + bpr_loss, rel=1e-5)


@pytest.mark.parametrize("momentum", [0.0, 0.4])
def test_row_update_sums_duplicates_like_the_reference(momentum):
    rng = np.random.default_rng(0)
    N, D = 12, 11                                        # D > VECTOR_THREADS under the simulator
    param = rng.normal(0, 1, (N, D)).astype(np.float32)
    acc = rng.uniform(0, 0.1, (N, D)).astype(np.float32)
    vel = rng.normal(0, 0.01, (N, D)).astype(np.float32) if momentum else np.zeros((0, D), np.float32)
    rows = np.array([3, 7, 3, 0, 3, 11, 7], np.int64)     # row 3 three times, row 7 twice
    grads = rng.normal(0, 1e-2, (len(rows), D)).astype(np.float32)
    results = []
    for ops in (training_reference, training_cpu):
        arrays = [param.copy(), acc.copy(), vel.copy()]
        ops.adagrad_momentum_rows(*arrays, rows, grads.copy(), 0.05, momentum, np.full(N, -1, np.int32))
        results.append(arrays)
    k = [to_kernel(a) for a in (param, acc, vel)]
    slot = to_kernel(np.full(N, -1, np.int32))
    kc.adagrad_momentum_rows(*k, to_kernel(rows), to_kernel(grads), 0.05, momentum, slot)
    results.append([host(a) for a in k])
    for got in results[1:]:
        for g, want in zip(got, results[0]):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-8)
    untouched = np.setdiff1d(np.arange(N), rows)
    assert (results[2][0][untouched] == param[untouched]).all()
    assert (host(slot) == -1).all()                      # the scratch is left as found


@pytest.mark.parametrize("momentum", [0.0, 0.15])
def test_dense_update_matches_the_reference(momentum):
    rng = np.random.default_rng(1)
    param = rng.normal(0, 1, (6, 9)).astype(np.float32)
    acc = np.zeros_like(param)
    vel = np.zeros_like(param) if momentum else np.zeros((0, 9), np.float32)
    grad = rng.normal(0, 1e-3, param.shape).astype(np.float32)
    want = [param.copy(), acc.copy(), vel.copy()]
    k = [to_kernel(a) for a in (param, acc, vel)]
    k_grad = to_kernel(grad)
    for _ in range(2):                                   # the second step uses the first one's state
        training_reference.adagrad_momentum_dense(*want, grad, 0.1, momentum)
        kc.adagrad_momentum_dense(*k, k_grad, 0.1, momentum)
    for g, w in zip(k, want):
        np.testing.assert_allclose(host(g), w, rtol=1e-5, atol=1e-9)


def test_samples_are_exactly_searchsorted():
    rng = np.random.default_rng(3)
    for n_items in (1, 2, 7, 50):
        weights = rng.integers(0, 5, n_items).astype(float) ** 0.5
        weights[-1] = max(weights[-1], 1.0)
        cdf = np.cumsum(weights)
        u = np.concatenate([rng.random(60), [0.0, np.nextafter(1.0, 0.0)]])
        want = np.empty(len(u), np.int32)
        training_reference.draw_popularity_samples(cdf, u, want)
        out = to_kernel(np.full(len(u), -1, np.int32))
        kc.draw_popularity_samples(to_kernel(cdf), to_kernel(u), out)
        np.testing.assert_array_equal(host(out), want)
        assert (weights[host(out)] > 0).all()            # items of weight 0 are never drawn


def test_kernel_arrays_refuse_memory_on_the_wrong_side():
    import torch

    if SIMULATOR:
        with pytest.raises(ValueError, match="CPU tensors"):
            kernel_array(torch.zeros(3, device="meta"))
        t = torch.ones(3, requires_grad=True)
        kernel_array(t)[1] = 5.0                         # detached, the same memory
        assert t.tolist() == [1.0, 5.0, 1.0]
    else:
        with pytest.raises(TypeError, match="numpy array"):
            kernel_array(np.zeros(3, np.float32))
        with pytest.raises(ValueError, match="CUDA tensors"):
            kernel_array(torch.zeros(3))
