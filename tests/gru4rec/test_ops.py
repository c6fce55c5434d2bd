"""The GRU stages and gathers of training_cpu (Numba) against training_reference (numpy)."""
import numpy as np
import pytest

from backend.kernels import training_cpu as ops_cpu
from backend.kernels import training_reference as ops_reference
from backend.kernels.fastmath import exp32_array

M, H = 7, 33


def _arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2, s).astype(np.float32) for s in shapes]


def _both(name, inputs, outputs):
    """Run ops_reference.name and ops_cpu.name on copies; return both sets of outputs."""
    results = []
    for ops in (ops_reference, ops_cpu):
        ins = [x.copy() for x in inputs]
        outs = [np.zeros_like(o) for o in outputs]
        getattr(ops, name)(*ins, *outs)
        results.append(ins + outs)
    return results


@pytest.mark.parametrize("masked", [False, True])
def test_gru_forward_and_backward_stages(masked):
    a, g, h, cand, dout, d_rh = _arrays(0, (M, 3 * H), (M, 2 * H), (M, H), (M, H), (M, H), (M, H))
    b = _arrays(1, (3 * H,))[0]
    mask = (np.random.default_rng(2).random((M, H)) > 0.3).astype(np.float32) / 0.7 if masked \
        else np.zeros((0, 0), np.float32)
    ref, fast = _both("gru_gates", [a, b, g, h], [h, h, h])
    for x, y in zip(ref, fast):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    a2, _, _, _, r, z, _ = ref
    ref, fast = _both("gru_output", [a2, cand, h, z, mask], [h, h])
    for x, y in zip(ref, fast):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=2e-6)
    n = ref[-2]
    ref, fast = _both("gru_backward_gates", [dout, mask, h, z, n], [a])
    np.testing.assert_allclose(fast[-1][:, H:], ref[-1][:, H:], rtol=1e-5, atol=1e-6)
    ref, fast = _both("gru_backward_reset", [d_rh, h, r], [a])
    np.testing.assert_allclose(fast[-1][:, :H], ref[-1][:, :H], rtol=1e-5, atol=1e-6)


def test_gathers():
    matrix = _arrays(3, (20, 6))[0]
    rows = np.array([4, 0, 4, 19], np.int64)
    for ops in (ops_reference, ops_cpu):
        out = np.zeros((4, 6), np.float32)
        ops.gather_rows(matrix, rows, out)
        np.testing.assert_array_equal(out, matrix[rows])
        h = np.full((3, 6), 9.0, np.float32)
        ops.gather_states(matrix, np.array([-1, 5, 2], np.int32), h)
        np.testing.assert_array_equal(h, np.stack([np.zeros(6), matrix[5], matrix[2]]))


def test_exp32_is_accurate_over_its_range():
    x = np.linspace(-87, 88, 100_001).astype(np.float32)
    out = np.empty_like(x)
    exp32_array(x, out)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - ref) / ref) < 4e-7
