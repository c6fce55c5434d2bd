"""The item-feature kernels (backend/kernels/features_cpu.py) give the numpy reference's results."""
import numpy as np
import pytest

from backend.kernels import features_cpu as cpu
from backend.kernels import features_reference as reference
from backend.kernels import training_cpu, training_reference


def _csr(rng, n_items, n_features):
    counts = rng.integers(0, 4, n_items)
    counts[3] = 0                                            # an item without features
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([rng.choice(n_features, c, replace=False) for c in counts]).astype(np.int32)
    values = rng.uniform(0.2, 1.0, len(indices)).astype(np.float32)
    return indptr, indices, values


@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_id_keep_matches_and_is_per_item(p):
    rows = np.array([5, 9, 5, 1, 9, 123456, 5], np.int64)
    a, b = np.empty(7, np.float32), np.empty(7, np.float32)
    cpu.id_keep(rows, 11, 42, p, a)
    reference.id_keep(rows, 11, 42, p, b)
    np.testing.assert_array_equal(a, b)
    assert a[0] == a[2] == a[6] and a[1] == a[4]             # every occurrence of an item: the same answer
    if p == 0.0:
        assert a.all()
    if p == 1.0:
        assert not a.any()


def test_id_keep_drops_about_p_and_changes_with_the_step():
    rows = np.arange(20000, dtype=np.int64)
    a, b = np.empty(len(rows), np.float32), np.empty(len(rows), np.float32)
    cpu.id_keep(rows, 0, 1, 0.3, a)
    cpu.id_keep(rows, 1, 1, 0.3, b)
    assert abs(1 - a.mean() - 0.3) < 0.02 and (a != b).mean() > 0.3


def test_gather_item_vectors_matches_reference_and_dense_formula():
    rng = np.random.default_rng(1)
    N, F, D = 12, 9, 5
    indptr, indices, values = _csr(rng, N, F)
    Wy = rng.normal(size=(N, D)).astype(np.float32)
    Fy = rng.normal(size=(F, D)).astype(np.float32)
    rows = np.array([3, 0, 7, 7, 11], np.int64)
    keep = np.array([1, 0, 1, 1, 0], np.float32)
    a, b = np.empty((5, D), np.float32), np.empty((5, D), np.float32)
    cpu.gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, a)
    reference.gather_item_vectors(Wy, keep, Fy, indptr, indices, values, rows, b)
    X = np.zeros((N, F), np.float32)
    for i in range(N):
        X[i, indices[indptr[i]:indptr[i + 1]]] = values[indptr[i]:indptr[i + 1]]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, keep[:, None] * Wy[rows] + X[rows] @ Fy, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_backward_scatter_then_row_update_matches_reference_and_dense_gradient(momentum):
    rng = np.random.default_rng(2)
    N, F, D = 10, 7, 4
    indptr, indices, values = _csr(rng, N, F)
    rows = np.array([1, 1, 4, 3, 8, 2], np.int64)           # a duplicate item, an item without features
    grads = rng.normal(size=(len(rows), D)).astype(np.float32)
    cap = len(rows) * 3
    results = []
    for k, t in ((cpu, training_cpu), (reference, training_reference)):
        out_rows, out_grads = np.zeros(cap, np.int64), np.zeros((cap, D), np.float32)
        n = k.expand_feature_grads(indptr, indices, values, rows, grads, out_rows, out_grads)
        Fy = np.ones((F, D), np.float32)
        acc = np.full((F, D), 0.5, np.float32)
        vel = np.full((F, D) if momentum else (0, D), 0.1, np.float32)
        dense = np.zeros((F, D), np.float32)
        np.add.at(dense, out_rows[:n], out_grads[:n])
        t.adagrad_momentum_rows(Fy, acc, vel, out_rows[:n], out_grads[:n].copy(), 0.1, momentum,
                                np.full(F, -1, np.int32))
        results.append((n, dense, Fy, acc))
    (n1, d1, f1, a1), (n2, d2, f2, a2) = results
    assert n1 == n2 == sum(indptr[r + 1] - indptr[r] for r in rows)
    X = np.zeros((N, F), np.float32)
    for i in range(N):
        X[i, indices[indptr[i]:indptr[i + 1]]] = values[indptr[i]:indptr[i + 1]]
    np.testing.assert_allclose(d1, X[rows].T @ grads, rtol=1e-5, atol=1e-6)    # d loss / d Fy
    np.testing.assert_allclose(d1, d2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a1, a2, rtol=1e-5, atol=1e-6)
