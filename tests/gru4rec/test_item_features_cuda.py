"""GRU4Rec with item features on the GPU path: the GPU step (with the kernels of backend/kernels/features_cuda.py)
computes what the torch-autograd reference step computes, the GPU loop follows the CPU trainer's trajectory, and
the artifact is the CPU one's (under the CUDA simulator in `make test`; on the GPU in tests/bench/gpu_check.sh)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.cuda import quick_thread_switches, skip_without_cuda  # noqa: F401

skip_without_cuda()

from backend.gru4rec.cuda_step import CudaStep  # noqa: E402
from backend.gru4rec.optimizer import OptimizerState  # noqa: E402
from backend.gru4rec.reference_step import ReferenceStep  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402
from backend.gru4rec.weights import init_weights, load_model  # noqa: E402
from backend.item_features import FeatureConfig, ItemFeatures  # noqa: E402
from backend.kernels.cuda_interop import SIMULATOR  # noqa: E402
from backend.session_data import SessionData  # noqa: E402
from tests.gru4rec.test_item_features_model import N_CAT, PER_CAT, _catalogue, _params, _sessions  # noqa: E402

N_ITEMS = N_CAT * PER_CAT


def _features():
    return ItemFeatures.build(_catalogue(), FeatureConfig(min_count=2, title_buckets=16))


@pytest.mark.parametrize("kw", [dict(momentum=0.0, id_dropout=0.4),
                                dict(momentum=0.3, loss="bpr-max", bpreg=0.5, final_act="elu-1", dropout_p_embed=0.2,
                                     id_dropout=0.6)])
def test_gpu_step_with_features_matches_the_reference(kw):
    """Losses, every gradient (Fy's included) and the weights after each step; duplicate inputs, an input that is
    also a target, a shrinking batch."""
    params = _params(layers=(4,), batch_size=4, n_sample=3, **kw)
    feats = _features().aligned([r["id"] for r in _catalogue()])
    w = init_weights(N_ITEMS, params.layers, "shared", 0, np.random.default_rng(3), feats)
    w.Wy[:] = np.random.default_rng(4).normal(0, 0.3, w.Wy.shape)      # a trained-looking ID part
    w.By[:] = np.random.default_rng(6).normal(0, 0.3, N_ITEMS)
    w_gpu, o_gpu = w.copy(), OptimizerState.zeros_for(w, params.momentum)
    w_ref, o_ref = w.copy(), OptimizerState.zeros_for(w, params.momentum)
    gpu, ref = CudaStep(w_gpu, o_gpu, params), ReferenceStep(w_ref, o_ref, params)
    gpu.record_gradients = True
    rng = np.random.default_rng(5)
    dropped = 0
    for t, M in enumerate((4, 4, 2)):
        ins = rng.integers(0, N_ITEMS, M)
        outs = rng.integers(0, N_ITEMS, M)
        ins[1] = ins[0]
        outs[0] = ins[0]
        samples = rng.integers(0, N_ITEMS, params.n_sample).astype(np.int32)
        src = np.arange(M, dtype=np.int32) if t else np.full(M, -1, np.int32)
        log_q = np.zeros(M + params.n_sample, np.float32)
        me = (rng.random((M, 4)) > 0.2).astype(np.float32) / np.float32(0.8) if params.dropout_p_embed \
            else np.zeros((0, 0), np.float32)
        hidden = [np.zeros((0, 0), np.float32)]
        loss_ref = ref(ins, outs, samples, src, log_q, me, hidden)
        loss = gpu(ins, outs, samples, src, log_q, me, hidden)
        assert loss == pytest.approx(loss_ref, rel=1e-4, abs=1e-5)
        dropped += int((gpu.keep[:2 * M + params.n_sample] == 0).sum())
        for name, g in ref.grads.items():
            np.testing.assert_allclose(gpu.grads[name], g.cpu().numpy(), rtol=2e-3, atol=2e-6,
                                       err_msg=f"gradient of {name}")
        gpu.store(w_gpu, o_gpu)
        for name, arr in w_ref.arrays().items():
            np.testing.assert_allclose(w_gpu.arrays()[name], arr, rtol=1e-4, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(o_gpu.acc[name], o_ref.acc[name], rtol=1e-3, atol=1e-9,
                                       err_msg=f"accumulator of {name}")
    assert "Fy" in gpu.grads and np.abs(gpu.grads["Fy"]).sum() > 0
    assert dropped > 0                                    # the ID dropout was exercised
    assert not np.allclose(w_gpu.Fy, w.Fy)


def _data(n=24):
    return SessionData.from_sessions(_sessions(np.random.default_rng(1), n=n))


@pytest.mark.parametrize("scaling", ["off", "serve"])
def test_gpu_training_with_features_follows_the_cpu_trajectory(scaling):
    """host_rng=True: the CPU trainer's samples and masks; the ID dropout is the same hash on both sides.
    id_dropout_scaling=serve trains the same and scales the ID rows of the item vectors on both."""
    params = _params(layers=(4,), batch_size=4, n_sample=3, sample_store_size=9, n_epochs=2, id_dropout=0.5,
                     dropout_p_embed=0.2, id_dropout_scaling=scaling)
    data, feats = _data(7), _features()
    cpu = train(data, params, threads=1, features=feats)
    gpu = train(data, params, device="cuda", host_rng=True, features=feats)
    assert gpu.device == "cuda" and gpu.steps_per_epoch == cpu.steps_per_epoch > 3
    if not SIMULATOR:                                      # on a GPU the full-batch steps ran as a CUDA graph
        assert gpu.cuda_graph.startswith("replayed"), gpu.cuda_graph
    np.testing.assert_allclose(gpu.epoch_loss, cpu.epoch_loss, rtol=1e-4)
    assert set(gpu.weights.arrays()) == set(cpu.weights.arrays()) >= {"Fy", "Wy"}
    for name, arr in cpu.weights.arrays().items():
        np.testing.assert_allclose(gpu.weights.arrays()[name], arr, rtol=2e-3, atol=2e-4, err_msg=name)
    assert gpu.weights.id_scale == cpu.weights.id_scale == (0.5 if scaling == "serve" else 1.0)
    np.testing.assert_allclose(gpu.weights.item_vectors(), cpu.weights.item_vectors(), rtol=2e-3, atol=2e-4)


def test_gpu_training_with_features_writes_the_cpu_artifact(tmp_path):
    from backend.training import train_bundle

    params = _params(layers=(4,), batch_size=4, n_sample=3, sample_store_size=9, n_epochs=1)
    data, records = _data(12), _catalogue()
    for device in ("cpu", "cuda"):
        train_bundle(data, params, tmp_path / device, device=device, fallbacks=False, feature_records=records)
    (w_cpu, a_cpu), (w_gpu, a_gpu) = load_model(tmp_path / "cpu"), load_model(tmp_path / "cuda")
    assert a_gpu.manifest["training"]["device"] == "cuda"
    assert list(a_gpu.item_ids) == list(a_cpu.item_ids) and len(a_cpu.item_ids) == N_ITEMS
    assert a_gpu.manifest["item_features"] == a_cpu.manifest["item_features"]
    assert {k: v.shape for k, v in a_gpu.arrays.items()} == {k: v.shape for k, v in a_cpu.arrays.items()}
    assert np.isfinite(w_gpu.Wy).all() and not np.allclose(w_gpu.Fy, w_cpu.Fy)    # trained on its own generator
