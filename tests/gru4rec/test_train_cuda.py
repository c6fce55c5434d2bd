"""The GPU training step (torch + Numba-CUDA kernels) computes what the torch-autograd reference step computes, and
the GPU training loop follows the CPU trainer's trajectory; under the CUDA simulator with CPU tensors in
`make test`, on the GPU in tests/bench/gpu_check.sh."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.cuda import quick_thread_switches, skip_without_cuda  # noqa: F401

skip_without_cuda()

from backend.gru4rec.cuda_step import CudaStep  # noqa: E402
from backend.gru4rec.cuda_train import DeviceSampleStore, train_cuda  # noqa: E402
from backend.gru4rec.device import resolve_device  # noqa: E402
from backend.gru4rec.reference_step import ReferenceStep  # noqa: E402
from backend.gru4rec.sampler import SampleStore  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402
from backend.gru4rec.weights import load_model  # noqa: E402
from backend.kernels.cuda_interop import torch_device  # noqa: E402
from backend.session_data import SessionData  # noqa: E402
from tests.gru4rec.test_fast_vs_reference import N_ITEMS, _params, _setup, _step_inputs  # noqa: E402

STEP_CASES = ["xe-shared-dropout", "xe-elu-momentum", "bpr-shared", "bpr-linear-2layers", "xe-separate",
              "bpr-onehot-2layers", "xe-no-samples"]


def compare_steps(case: str, batch_sizes=(5, 4, 2)) -> None:
    """Run the reference step and the GPU step on the same inputs; compare losses, gradients, weights and
    optimiser state after every step (the batch shrinks as at the end of an epoch)."""
    params = _params(case)
    w_ref, opt_ref = _setup(params)
    w_gpu, opt_gpu = w_ref.copy(), opt_ref.copy()
    ref = ReferenceStep(w_ref, opt_ref, params)
    gpu = CudaStep(w_gpu, opt_gpu, params)
    gpu.record_gradients = True
    rng = np.random.default_rng(7)
    M_prev = 0
    for M in batch_sizes:
        inputs = _step_inputs(params, rng, M, max(M_prev, 1))
        if M_prev == 0:
            inputs[3][:] = -1
        loss_ref = ref(*inputs)
        loss = gpu(*inputs)
        assert loss == pytest.approx(loss_ref, rel=1e-4, abs=1e-5)
        for name, g in ref.grads.items():
            np.testing.assert_allclose(gpu.grads[name], g.cpu().numpy(), rtol=2e-3, atol=2e-6,
                                       err_msg=f"gradient of {name}")
        gpu.store(w_gpu, opt_gpu)
        if ref.dev.type != "cpu":
            ref.store(w_ref, opt_ref)
        for name, arr in w_ref.arrays().items():
            np.testing.assert_allclose(w_gpu.arrays()[name], arr, rtol=1e-4, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(opt_gpu.acc[name], opt_ref.acc[name], rtol=1e-3, atol=1e-9,
                                       err_msg=f"accumulator of {name}")
            np.testing.assert_allclose(opt_gpu.vel[name], opt_ref.vel[name], rtol=1e-3, atol=1e-6,
                                       err_msg=f"velocity of {name}")
        M_prev = M


@pytest.mark.parametrize("case", STEP_CASES)
def test_gpu_step_matches_reference(case):
    compare_steps(case)


def _few_sessions(n_sessions: int = 14, seed: int = 0) -> SessionData:
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.6, 1000) % N_ITEMS
    sessions, k = [], 0
    for length in rng.integers(2, 6, n_sessions):
        sessions.append([str(i) for i in popular[k:k + length]])
        k += length
    return SessionData.from_sessions(sessions)


@pytest.mark.parametrize("case", ["xe-shared-dropout", "bpr-onehot-2layers"])
def test_gpu_training_follows_the_cpu_trajectory(case):
    """With the CPU trainer's generator (host_rng) the GPU loop draws the same samples and masks: same losses and
    weights. The store is redrawn several times in the epoch."""
    params = _params(case).replace(n_epochs=2, sample_store_size=3 * _params(case).n_sample)
    data = _few_sessions()
    cpu = train(data, params, impl="fast", threads=1)
    gpu = train(data, params, impl="fast", device="cuda", host_rng=True)
    assert gpu.device == "cuda" and gpu.steps_per_epoch == cpu.steps_per_epoch > 3
    np.testing.assert_allclose(gpu.epoch_loss, cpu.epoch_loss, rtol=1e-4)
    for name, arr in cpu.weights.arrays().items():
        np.testing.assert_allclose(gpu.weights.arrays()[name], arr, rtol=2e-3, atol=2e-4, err_msg=name)


def test_device_random_numbers_still_train():
    """The default (device generator): a different trajectory, but the loss falls like the CPU trainer's."""
    params = _params("xe-shared-dropout").replace(n_epochs=3, learning_rate=0.1)
    data = _few_sessions(10)
    gpu = train_cuda(data, params)
    cpu = train(data, params, threads=1)
    assert gpu.epoch_loss[-1] < gpu.epoch_loss[0]
    assert gpu.epoch_loss[-1] == pytest.approx(cpu.epoch_loss[-1], rel=0.2)


def test_device_sample_store_draws_what_the_cpu_store_draws():
    import torch

    support = np.array([1, 2, 5, 0, 40, 3])
    cpu = SampleStore(support, 0.5, 6, 24, np.random.default_rng(2))
    gpu = DeviceSampleStore(support, 0.5, 6, 24, torch.device(torch_device()), rng=np.random.default_rng(2))
    for _ in range(9):                                   # two redraws
        np.testing.assert_array_equal(gpu.next().cpu().numpy(), cpu.next())
    assert gpu.generations == cpu.generations == 3


def test_cuda_training_writes_the_same_artifact(tmp_path):
    from backend.training import train_bundle

    params = _params("bpr-shared").replace(n_epochs=1)
    data = _few_sessions(8)
    summary = train_bundle(data, params, tmp_path / "gpu", device="cuda", fallbacks=False)
    weights, art = load_model(tmp_path / "gpu")
    assert summary["training"]["device"] == "cuda" and art.manifest["training"]["device"] == "cuda"
    assert weights.Wy.shape == (data.n_items, 8) and list(art.item_ids) == list(data.item_ids)
    assert resolve_device("cuda") == "cuda"


def test_the_gpu_path_refuses_item_features_without_features():
    """item_features=True trains on the GPU (tests/gru4rec/test_item_features_cuda.py), but not without them."""
    from backend.errors import UpnextError
    from backend.gru4rec.params import Hyperparameters

    data = SessionData.from_sessions([["a", "b", "c"], ["b", "c"]])
    with pytest.raises(UpnextError, match="needs item features"):
        train_cuda(data, Hyperparameters(layers=(4,), batch_size=2, n_sample=2, sample_store_size=4,
                                         item_features=True))


def test_the_gpu_path_refuses_id_dropout_scaling_in_training():
    from backend.errors import UpnextError
    from backend.gru4rec.params import Hyperparameters

    data = SessionData.from_sessions([["a", "b", "c"], ["b", "c"]])
    with pytest.raises(UpnextError, match="id_dropout_scaling=train: the GPU path does not implement it"):
        train_cuda(data, Hyperparameters(layers=(4,), batch_size=2, n_sample=2, sample_store_size=4,
                                         item_features=True, id_dropout=0.5, id_dropout_scaling="train"))
