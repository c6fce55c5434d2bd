"""GPU training against CPU training, on a real GPU (skipped elsewhere; tests/bench/gpu_check.sh runs these).

At the sizes of the published settings (full thread blocks, thousands of score columns, popular items drawn many
times in one step) the GPU step (torch + Numba-CUDA) must compute the CPU fast step's losses, gradients and updated
weights; the plain PyTorch step must do the same on the GPU as on the CPU; a short GPU training must follow the CPU
training. The simulator runs the same code on tiny shapes in `make test` (tests/*/test_*cuda*.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import config

if config.ENABLE_CUDASIM or not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False here, or NUMBA_ENABLE_CUDASIM is set); "
                "tests/bench/gpu_check.sh runs these on one", allow_module_level=True)

from backend.gru4rec.cuda_step import CudaStep  # noqa: E402
from backend.gru4rec.device import cuda_unavailable  # noqa: E402
from backend.gru4rec.fast import FastStep  # noqa: E402
from backend.gru4rec.loop import DropoutMasks  # noqa: E402
from backend.gru4rec.optimizer import OptimizerState  # noqa: E402
from backend.gru4rec.params import Hyperparameters, parse_params  # noqa: E402
from backend.gru4rec.reference_step import ReferenceStep  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402
from backend.gru4rec.weights import init_weights  # noqa: E402
from backend.kernels.cuda_interop import kernel_array, launch_stream  # noqa: E402
from backend.session_data import SessionData  # noqa: E402

if cuda_unavailable("fast"):
    pytest.skip(f"the GPU path cannot run: {cuda_unavailable('fast')}", allow_module_level=True)

N_ITEMS = 3000
SETTINGS = {   # the shapes that matter: rsc15-like XE with logQ, Diginetica-like BPR-max with dropout and momentum
    "xe-100x32": "loss=cross-entropy,layers=100,batch_size=32,n_sample=2048,sample_alpha=0.75,logq=1.0,"
                 "dropout_p_embed=0.1,learning_rate=0.1",
    "bprmax-512x128": "diginetica",
    "xe-onehot-2layers": "loss=cross-entropy,constrained_embedding=False,layers=64/48,batch_size=48,n_sample=500,"
                         "momentum=0.3,dropout_p_hidden=0.2",
}


def _setup(params: Hyperparameters, seed: int = 3):
    rng = np.random.default_rng(seed)
    w = init_weights(N_ITEMS, params.layers, params.embedding_mode, params.embedding, rng)
    w.By[:] = rng.normal(0, 0.3, N_ITEMS)
    return w, OptimizerState.zeros_for(w, params.momentum)


def _inputs(params: Hyperparameters, rng, M: int, M_prev: int, popular: np.ndarray):
    """A step's arguments; samples drawn from a few hundred popular items, so many rows repeat in one step."""
    in_items = rng.choice(popular, M)
    out_items = rng.choice(popular, M)
    samples = rng.choice(popular, params.n_sample).astype(np.int32)
    src = rng.integers(-1, max(M_prev, 1), M).astype(np.int32) if M_prev else np.full(M, -1, np.int32)
    log_q = rng.normal(0, 2, M + params.n_sample).astype(np.float32)
    width = 1 if params.embedding_mode == "onehot" else (params.embedding or params.layers[-1])
    mask_embed, masks_hidden = DropoutMasks(params, width, rng).draw(M)
    return in_items, out_items, samples, src, log_q, mask_embed.copy(), [m.copy() for m in masks_hidden]


def _close(got, want, rtol, what, atol_floor=1e-7):
    """Equal up to ``rtol``, entries near zero up to ``rtol`` of the largest one (float32 sums in another order)."""
    atol = max(atol_floor, rtol * float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_gpu_step_matches_the_cpu_fast_step(setting):
    params = parse_params(SETTINGS[setting])
    w_cpu, opt_cpu = _setup(params)
    w_gpu, opt_gpu = w_cpu.copy(), opt_cpu.copy()
    cpu, gpu = FastStep(w_cpu, opt_cpu, params), CudaStep(w_gpu, opt_gpu, params)
    cpu.record_gradients = gpu.record_gradients = True
    rng = np.random.default_rng(11)
    popular = rng.choice(N_ITEMS, 300, replace=False)
    B, M_prev = params.batch_size, 0
    for M in (B, B, B - 3, 5):                              # full batches, then the shrinking tail
        inputs = _inputs(params, rng, M, M_prev, popular)
        loss_cpu, loss_gpu = cpu(*inputs), gpu(*inputs)
        assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
        for name, g in cpu.grads.items():
            _close(gpu.grads[name], g, 2e-3, f"gradient of {name}")
        gpu.store(w_gpu, opt_gpu)
        for name, arr in w_cpu.arrays().items():
            _close(w_gpu.arrays()[name], arr, 1e-4, name, atol_floor=1e-5)
            _close(opt_gpu.acc[name], opt_cpu.acc[name], 2e-3, f"accumulator of {name}")
            if params.momentum:
                _close(opt_gpu.vel[name], opt_cpu.vel[name], 2e-3, f"velocity of {name}")
        M_prev = M


def test_plain_pytorch_step_on_the_gpu_matches_the_cpu():
    params = parse_params(SETTINGS["bprmax-512x128"]).replace(layers=(128,), batch_size=64, n_sample=256)
    w_cpu, opt_cpu = _setup(params)
    w_gpu, opt_gpu = w_cpu.copy(), opt_cpu.copy()
    cpu, gpu = ReferenceStep(w_cpu, opt_cpu, params), ReferenceStep(w_gpu, opt_gpu, params, device="cuda")
    rng = np.random.default_rng(5)
    popular = rng.choice(N_ITEMS, 200, replace=False)
    M_prev = 0
    for M in (64, 64, 30):
        inputs = _inputs(params, rng, M, M_prev, popular)
        assert gpu(*inputs) == pytest.approx(cpu(*inputs), rel=1e-4)
        M_prev = M
    gpu.store(w_gpu, opt_gpu)
    for name, arr in w_cpu.arrays().items():
        _close(w_gpu.arrays()[name], arr, 1e-4, name, atol_floor=1e-5)


def test_gpu_step_on_a_side_stream_gives_the_same_result():
    """The kernels must run on torch's current stream: on another stream, unordered with torch's work, they would
    read scores and gradients before torch has written them."""
    params = parse_params(SETTINGS["xe-100x32"])
    results = []
    for use_side_stream in (False, True):
        w, opt = _setup(params)
        step = CudaStep(w, opt, params)
        rng = np.random.default_rng(2)
        popular = rng.choice(N_ITEMS, 300, replace=False)
        stream = torch.cuda.Stream() if use_side_stream else torch.cuda.current_stream()
        with torch.cuda.stream(stream):
            assert (launch_stream() != 0) == use_side_stream
            losses = [step(*_inputs(params, rng, 32, 32 * (t > 0), popular)) for t in range(5)]
        torch.cuda.synchronize()
        step.store(w, opt)
        results.append((losses, w.Wy.copy()))
    # equal up to the order of the atomic adds that sum the gradients of items drawn three times or more
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-7)


def test_kernels_see_torch_memory_without_a_copy():
    t = torch.zeros(4, device="cuda")
    view = kernel_array(t)
    view[2:3].copy_to_device(np.array([5.0], np.float32))
    assert t.tolist() == [0.0, 0.0, 5.0, 0.0]


def _sessions(n_sessions: int = 1500, seed: int = 0) -> SessionData:
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.3, 40 * n_sessions) % 800
    sessions, k = [], 0
    for length in rng.integers(2, 12, n_sessions):
        sessions.append([str(i) for i in popular[k:k + length]])
        k += length
    return SessionData.from_sessions(sessions)


@pytest.mark.parametrize("setting", ["xe-100x32", "bprmax-512x128"])
def test_short_gpu_training_follows_cpu_training(setting):
    """Two epochs with the CPU trainer's random numbers (host_rng): the same trajectory up to float rounding.
    With the GPU's own generator the trajectory differs but ends at a similar loss."""
    params = parse_params(SETTINGS[setting]).replace(n_epochs=2, n_sample=512, sample_store_size=20_000)
    data = _sessions()
    cpu = train(data, params, device="cpu")
    gpu = train(data, params, device="cuda", host_rng=True)
    np.testing.assert_allclose(gpu.epoch_loss, cpu.epoch_loss, rtol=2e-3)
    for name, arr in cpu.weights.arrays().items():
        _close(gpu.weights.arrays()[name], arr, 2e-2, name)
    own = train(data, params, device="cuda")
    assert own.epoch_loss[-1] == pytest.approx(cpu.epoch_loss[-1], rel=0.05)
    assert own.epoch_loss[-1] < own.epoch_loss[0]


@pytest.mark.parametrize("setting", ["xe-100x32", "bprmax-512x128"])
def test_cuda_graph_replays_follow_the_eager_steps(setting):
    """Full-batch steps replayed as a CUDA graph compute what the same steps launched one by one compute: the same
    random numbers (host_rng) give the same trajectory up to the float rounding of atomic additions."""
    params = parse_params(SETTINGS[setting]).replace(n_epochs=2, n_sample=512, sample_store_size=20_000)
    data = _sessions()
    eager = train(data, params, device="cuda", host_rng=True, cuda_graphs=False)
    graphed = train(data, params, device="cuda", host_rng=True)
    assert eager.cuda_graph == "off"
    assert graphed.cuda_graph.startswith("replayed"), graphed.cuda_graph
    assert int(graphed.cuda_graph.split()[1]) > graphed.steps_per_epoch      # most steps of both epochs
    np.testing.assert_allclose(graphed.epoch_loss, eager.epoch_loss, rtol=1e-4)
    for name, arr in eager.weights.arrays().items():
        _close(graphed.weights.arrays()[name], arr, 1e-3, name)
