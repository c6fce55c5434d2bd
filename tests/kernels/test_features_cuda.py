"""The Numba-CUDA item-feature kernels (backend/kernels/features_cuda.py) give the numpy reference's results, and
the row-wise update skips the -1 places the GPU step pads its feature gradients with (under the CUDA simulator in
`make test`; on the GPU in tests/bench/gpu_check.sh)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.cuda import host, quick_thread_switches, skip_without_cuda, to_kernel  # noqa: F401

skip_without_cuda()

from backend.kernels import features_cuda as kc  # noqa: E402
from backend.kernels import features_reference as reference  # noqa: E402
from backend.kernels import training_cuda, training_reference  # noqa: E402
from backend.kernels.cuda_interop import launch_stream  # noqa: E402
from tests.kernels.test_features import _csr  # noqa: E402


def _dense(indptr, indices, values, N, F):
    X = np.zeros((N, F), np.float32)
    for i in range(N):
        X[i, indices[indptr[i]:indptr[i + 1]]] = values[indptr[i]:indptr[i + 1]]
    return X


@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_id_keep_drops_exactly_what_the_cpu_drops(p):
    rows = np.array([5, 9, 5, 1, 9, 123456, 5, 0, 77, 3, 2, 31, 8, 6, 4, 1000, 17, 18], np.int64)
    want = np.empty(len(rows), np.float32)
    for step, seed in ((11, 42), (0, 0), (123457, 7)):
        reference.id_keep(rows, step, seed, p, want)
        got = to_kernel(np.full(len(rows), 5.0, np.float32))
        kc.id_keep(to_kernel(rows), step, seed, p, got)
        np.testing.assert_array_equal(host(got), want)


def test_drop_threshold_is_the_exact_integer_form_of_u_below_p():
    for p in (0.0, 1.0, 0.5, 0.3, 1e-9, 1 - 1e-12):
        t = int(kc.drop_threshold(p))
        for x in (t - 1, t):
            if 0 <= x < 2 ** 53:
                assert (x * 2.0 ** -53 < p) == (x < t)


def test_gather_matches_reference_with_offset_rows():
    rng = np.random.default_rng(1)
    N, F, D = 12, 9, 5
    indptr, indices, values = _csr(rng, N, F)
    Wy = rng.normal(size=(N, D)).astype(np.float32)
    Fy = rng.normal(size=(F, D)).astype(np.float32)
    rows = np.array([3, 0, 7, 7, 11, 2], np.int64)
    keep = np.array([1, 0, 1, 1, 0, 1], np.float32)
    want = np.empty((6, D), np.float32)
    reference.gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, want)
    np.testing.assert_allclose(want, keep[:, None] * Wy[rows] + _dense(indptr, indices, values, N, F)[rows] @ Fy,
                               rtol=1e-5, atol=1e-6)
    out = to_kernel(np.zeros((6, D), np.float32))
    kc.gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, out)
    np.testing.assert_allclose(host(out), want, rtol=1e-5, atol=1e-6)
    # the step's form: rows and keep read from an offset (the inputs follow the score columns), out from row 0
    out = to_kernel(np.full((4, D), 9.0, np.float32))
    kc.launch_gather(*(to_kernel(a) for a in (Wy, keep, Fy, indptr, indices, values, rows)), 2, 3, out,
                     launch_stream())
    got = host(out)
    np.testing.assert_allclose(got[:3], want[2:5], rtol=1e-5, atol=1e-6)
    assert (got[3] == 9.0).all()


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_expand_then_row_update_matches_reference(momentum):
    rng = np.random.default_rng(2)
    N, F, D = 10, 7, 3
    indptr, indices, values = _csr(rng, N, F)
    rows = np.array([1, 1, 4, 3, 8, 2, 1], np.int64)           # duplicate items, an item without features
    grads = rng.normal(size=(len(rows), D)).astype(np.float32)
    cap = len(rows) * 3
    want_rows, want_grads = np.zeros(cap, np.int64), np.zeros((cap, D), np.float32)
    n = reference.expand_feature_grads(indptr, indices, values, rows, grads, want_rows, want_grads)
    got_rows, got_grads = np.zeros(cap, np.int64), np.zeros((cap, D), np.float32)
    assert kc.expand_feature_grads(indptr, indices, values, rows, grads, got_rows, got_grads) == n
    np.testing.assert_array_equal(got_rows[:n], want_rows[:n])
    np.testing.assert_allclose(got_grads[:n], want_grads[:n], rtol=1e-6)

    # the step's form: fixed places padded with -1, then the row-wise update that skips them
    per_item = int(np.diff(indptr).max())
    place_rows = to_kernel(np.full(len(rows) * per_item, 99, np.int64))
    place_grads = to_kernel(np.zeros((len(rows) * per_item, D), np.float32))
    kc.launch_expand(*(to_kernel(a) for a in (indptr, indices, values, rows, grads)), len(rows), per_item,
                     place_rows, place_grads, launch_stream())
    assert (host(place_rows) == -1).sum() == len(rows) * per_item - n

    def state():
        return (np.ones((F, D), np.float32), np.full((F, D), 0.5, np.float32),
                np.full((F, D) if momentum else (0, D), 0.1, np.float32))

    Fy_ref, acc_ref, vel_ref = state()
    training_reference.adagrad_momentum_rows(Fy_ref, acc_ref, vel_ref, want_rows[:n], want_grads[:n].copy(), 0.1,
                                             momentum, np.full(F, -1, np.int32))
    Fy, acc, vel = (to_kernel(a) for a in state())
    slot = to_kernel(np.full(F, -1, np.int32))
    training_cuda.launch_adagrad_rows(Fy, acc, vel, place_rows, place_grads, len(rows) * per_item, 0.1, momentum,
                                      slot, launch_stream())
    np.testing.assert_allclose(host(Fy), Fy_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(acc), acc_ref, rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(host(vel), vel_ref, rtol=1e-5, atol=1e-6)
    assert (host(slot) == -1).all()
