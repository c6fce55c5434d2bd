"""The fused fast step computes what the plain torch-autograd reference step computes: losses, gradients,
updated weights and optimiser state, over single steps and whole (small) trainings."""
import numpy as np
import pytest

from backend.gru4rec.fast import FastStep
from backend.gru4rec.loop import DropoutMasks
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.reference_step import ReferenceStep
from backend.gru4rec.trainer import train
from backend.gru4rec.weights import init_weights
from backend.kernels import training_cpu as ops_cpu
from backend.kernels import training_reference as ops_reference
from backend.session_data import SessionData

N_ITEMS = 40

CASES = {
    "xe-shared-dropout": dict(loss="cross-entropy", logq=1.0, dropout_p_embed=0.3, dropout_p_hidden=0.2),
    "xe-elu-momentum": dict(loss="cross-entropy", final_act="elu-0.5", momentum=0.3, logq=0.5),
    "bpr-shared": dict(loss="bpr-max", final_act="elu-1", bpreg=0.9, momentum=0.15, dropout_p_embed=0.5,
                       dropout_p_hidden=0.3),
    "bpr-linear-2layers": dict(loss="bpr-max", final_act="linear", bpreg=0.5, layers=(12, 8),
                               dropout_p_hidden=0.25),
    "xe-separate": dict(loss="cross-entropy", constrained_embedding=False, embedding=6, momentum=0.2,
                        dropout_p_embed=0.2),
    "bpr-onehot-2layers": dict(loss="bpr-max", constrained_embedding=False, embedding=0, bpreg=1.0,
                               layers=(10, 6), dropout_p_embed=0.4, momentum=0.4),
    "xe-no-samples": dict(loss="cross-entropy", n_sample=0, logq=1.0),
}


def _params(case: str) -> Hyperparameters:
    base = dict(layers=(8,), batch_size=5, n_sample=7, learning_rate=0.2, sample_store_size=70)
    return Hyperparameters(**{**base, **CASES[case]})


def _setup(params: Hyperparameters, seed: int = 3):
    rng = np.random.default_rng(seed)
    w = init_weights(N_ITEMS, params.layers, params.embedding_mode, params.embedding, rng)
    # non-zero biases so that their gradients and updates are exercised from the first step
    w.By[:] = rng.normal(0, 0.3, N_ITEMS)
    for layer in w.layers:
        layer.b[:] = rng.normal(0, 0.3, len(layer.b))
    return w, OptimizerState.zeros_for(w, params.momentum)


def _step_inputs(params: Hyperparameters, rng, M: int, M_prev: int):
    in_items = rng.integers(0, N_ITEMS, M)
    out_items = rng.integers(0, N_ITEMS, M)
    if M >= 3:
        in_items[1] = in_items[0]                           # duplicate inputs
        out_items[2] = in_items[0]                          # an input row that is also a target
    samples = rng.integers(0, N_ITEMS, params.n_sample).astype(np.int32)
    if params.n_sample > 1:
        samples[0] = out_items[0]                           # an accidental hit
    src = rng.integers(-1, M_prev, M).astype(np.int32)      # some slots reset, others carried
    log_q = rng.normal(0, 1, M + params.n_sample).astype(np.float32)
    width = 1 if params.embedding_mode == "onehot" else (params.embedding or params.layers[-1])
    masks = DropoutMasks(params, width, rng)
    mask_embed, masks_hidden = masks.draw(M)
    return (in_items, out_items, samples, src, log_q, mask_embed.copy(), [m.copy() for m in masks_hidden])


@pytest.mark.parametrize("case", list(CASES))
def test_steps_match_reference(case):
    params = _params(case)
    w_ref, opt_ref = _setup(params)
    w_fast, opt_fast = w_ref.copy(), opt_ref.copy()
    w_np, opt_np = w_ref.copy(), opt_ref.copy()
    ref = ReferenceStep(w_ref, opt_ref, params)
    fast = FastStep(w_fast, opt_fast, params, ops=ops_cpu)
    fast_np = FastStep(w_np, opt_np, params, ops=ops_reference)
    fast.record_gradients = fast_np.record_gradients = True
    rng = np.random.default_rng(7)
    M_prev = 0
    nonzero = set()
    for M in (5, 5, 4, 2, 1):                               # the batch shrinks at the end
        inputs = _step_inputs(params, rng, M, max(M_prev, 1))
        if M_prev == 0:
            inputs[3][:] = -1
        loss_ref = ref(*inputs)
        for step, w, opt in ((fast, w_fast, opt_fast), (fast_np, w_np, opt_np)):
            loss = step(*inputs)
            assert loss == pytest.approx(loss_ref, rel=1e-4, abs=1e-5)
            for name, g in ref.grads.items():
                np.testing.assert_allclose(step.grads[name], g.numpy(), rtol=2e-3, atol=2e-6,
                                           err_msg=f"gradient of {name}")
            for name, arr in w_ref.arrays().items():
                np.testing.assert_allclose(w.arrays()[name], arr, rtol=1e-4, atol=1e-5, err_msg=name)
                np.testing.assert_allclose(opt.acc[name], opt_ref.acc[name], rtol=1e-3, atol=1e-9,
                                           err_msg=f"accumulator of {name}")
                np.testing.assert_allclose(opt.vel[name], opt_ref.vel[name], rtol=1e-3, atol=1e-6,
                                           err_msg=f"velocity of {name}")
        nonzero |= {name for name, g in ref.grads.items() if np.abs(g.numpy()).max() > 0}
        M_prev = M
    assert nonzero == set(w_ref.arrays())                   # every weight got a gradient at some step


def _tiny_sessions(seed: int = 0) -> SessionData:
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.6, 4000) % N_ITEMS
    sessions, k = [], 0
    for length in rng.integers(2, 8, 60):
        sessions.append([str(i) for i in popular[k:k + length]])
        k += length
    return SessionData.from_sessions(sessions)


@pytest.mark.parametrize("case", ["xe-shared-dropout", "bpr-shared", "bpr-onehot-2layers"])
def test_whole_training_follows_the_same_trajectory(case):
    params = _params(case).replace(n_epochs=2)
    data = _tiny_sessions()
    fast = train(data, params, impl="fast")
    ref = train(data, params, impl="reference")
    np.testing.assert_allclose(fast.epoch_loss, ref.epoch_loss, rtol=1e-3)
    for name, arr in ref.weights.arrays().items():
        np.testing.assert_allclose(fast.weights.arrays()[name], arr, rtol=2e-3, atol=2e-4, err_msg=name)
