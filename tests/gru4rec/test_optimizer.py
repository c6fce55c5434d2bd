"""One Adagrad-with-momentum step against the update formula of spec §5, duplicates included."""
import numpy as np
import pytest

from backend.gru4rec.optimizer import OptimizerState, is_sparse
from backend.gru4rec.weights import init_weights
from backend.kernels import training_cpu as ops_cpu
from backend.kernels import training_reference as ops_reference

OPS = [ops_reference, ops_cpu]
IDS = ["numpy", "numba"]


def _formula(theta, acc, vel, g, lr, momentum):
    """acc += g^2 ; v = momentum v - lr g / sqrt(acc + 1e-6) ; theta += v (float64, element by element)."""
    acc = acc + g * g
    v = momentum * vel - lr * g / np.sqrt(acc + 1e-6)
    return theta + v, acc, v


@pytest.mark.parametrize("momentum", [0.0, 0.4])
@pytest.mark.parametrize("ops", OPS, ids=IDS)
def test_row_update_sums_duplicates_and_leaves_other_rows_alone(ops, momentum):
    rng = np.random.default_rng(0)
    N, D = 12, 5
    param = rng.normal(0, 1, (N, D)).astype(np.float32)
    acc = rng.uniform(0, 0.1, (N, D)).astype(np.float32)
    vel = rng.normal(0, 0.01, (N, D)).astype(np.float32) if momentum else np.zeros((0, D), np.float32)
    rows = np.array([3, 7, 3, 0, 3, 11], np.int64)
    grads = rng.normal(0, 1e-2, (len(rows), D)).astype(np.float32)
    summed = {r: grads[rows == r].sum(axis=0).astype(np.float64) for r in set(rows.tolist())}
    before = param.copy(), acc.copy(), vel.copy()
    slot = np.full(N, -1, np.int32)

    ops.adagrad_momentum_rows(param, acc, vel, rows, grads.copy(), 0.05, momentum, slot)

    for r in range(N):
        if r in summed:
            v0 = before[2][r] if momentum else np.zeros(D)
            theta, a, v = _formula(before[0][r], before[1][r], v0, summed[r], 0.05, momentum)
            np.testing.assert_allclose(param[r], theta, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(acc[r], a, rtol=1e-5, atol=1e-10)
            if momentum:
                np.testing.assert_allclose(vel[r], v, rtol=1e-5, atol=1e-9)
        else:   # untouched: neither decayed momentum nor applied
            assert (param[r] == before[0][r]).all() and (acc[r] == before[1][r]).all()
            if momentum:
                assert (vel[r] == before[2][r]).all()
    assert (slot == -1).all()       # the scratch is left as found


@pytest.mark.parametrize("momentum", [0.0, 0.15])
@pytest.mark.parametrize("ops", OPS, ids=IDS)
def test_dense_update_follows_the_formula(ops, momentum):
    rng = np.random.default_rng(1)
    param = rng.normal(0, 1, (6, 9)).astype(np.float32)
    acc = np.zeros_like(param)                  # the accumulator starts at 0 (spec §9, mistake 7)
    vel = np.zeros_like(param) if momentum else np.zeros((0, 9), np.float32)
    g = rng.normal(0, 1e-3, param.shape).astype(np.float32)
    expect = _formula(param.astype(np.float64), acc, np.zeros(param.shape), g.astype(np.float64), 0.1, momentum)
    for _ in range(2):                          # the second step uses the first one's state
        ops.adagrad_momentum_dense(param, acc, vel, g, 0.1, momentum)
        np.testing.assert_allclose(param, expect[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(acc, expect[1], rtol=1e-5, atol=1e-12)
        expect = _formula(expect[0], expect[1], expect[2], g.astype(np.float64), 0.1, momentum)


def test_first_step_with_tiny_gradient_is_damped_by_epsilon():
    """eps sits inside the square root: a gradient of 1e-5 moves a weight by lr * 1e-5 / sqrt(1e-10 + 1e-6)."""
    p, acc = np.zeros(1, np.float32), np.zeros(1, np.float32)
    ops_cpu.adagrad_momentum_dense(p, acc, np.zeros(0, np.float32), np.array([1e-5], np.float32), 0.1, 0.0)
    assert p[0] == pytest.approx(-0.1 * 1e-5 / np.sqrt(1e-10 + 1e-6), rel=1e-5)


def test_state_has_one_accumulator_per_weight_and_velocity_only_with_momentum():
    w = init_weights(20, (4,), "shared", 0, np.random.default_rng(0))
    plain = OptimizerState.zeros_for(w, 0.0)
    with_momentum = OptimizerState.zeros_for(w, 0.3)
    for name, arr in w.arrays().items():
        assert plain.acc[name].shape == arr.shape and not plain.acc[name].any()
        assert plain.vel[name].size == 0 and with_momentum.vel[name].shape == arr.shape
    assert is_sparse("Wy", "shared") and is_sparse("By", "shared") and not is_sparse("layer0.Wx", "shared")
    assert is_sparse("layer0.Wx", "onehot") and not is_sparse("layer1.Wx", "onehot")
