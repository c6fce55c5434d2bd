"""The GRU4Rec training loop on a GPU (``train.train(..., device="cuda")``): ``train.py``'s loop with every array
on the device and a ``cuda_step.CudaStep``.

The epoch's schedule (input item, target item and state row of every training pair) is uploaded once and a step
slices it; the store of popularity-sampled negatives is drawn on the device by the ``draw_popularity_samples``
kernel and consumed one row per step; dropout masks come from torch's generator on the device. The host only
queues work: it waits for the GPU when it reports progress (which reads the loss) and at the end of an epoch.
Full-batch steps are replayed as a CUDA graph (cuda_graph.py).

With ``host_rng=True`` the store's uniforms and the dropout masks come from the CPU trainer's numpy generator,
in the CPU trainer's order: the GPU then follows the CPU trainer's trajectory up to float rounding (tests). It is
slower: masks are drawn on the CPU and copied every step.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np
import torch

from backend.errors import UpnextError
from backend.gru4rec.batches import session_parallel
from backend.gru4rec.cuda_graph import StepGraph
from backend.gru4rec.cuda_step import CudaStep
from backend.gru4rec.weights import init_weights
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.train import DropoutMasks, Progress, TrainResult, end_epoch
from backend.kernels.training_cuda import launch_draw_samples
from backend.kernels.cuda_interop import SIMULATOR, kernel_array, launch_stream, torch_device
from backend.session_data import SessionData

log = logging.getLogger(__name__)


class DeviceSampleStore:
    """``sampler.SampleStore`` on the device: (rows, n_sample) int32 ids drawn ahead, one row per step."""

    CHUNK = 1 << 20

    def __init__(self, support: np.ndarray, sample_alpha: float, n_sample: int, store_size: int, dev, *,
                 rng: np.random.Generator | None = None, generator: torch.Generator | None = None):
        weights = np.asarray(support, dtype=np.float64) ** sample_alpha
        weights[np.asarray(support) <= 0] = 0.0
        if n_sample > 0 and weights.sum() <= 0:
            raise ValueError("no item has a positive support")
        self.dev, self.rng, self.generator = dev, rng, generator
        self.cdf = torch.from_numpy(np.cumsum(weights)).to(dev)            # (n_items,) float64
        self.rows = max(1, store_size // max(n_sample, 1))
        self.store = torch.zeros((self.rows, n_sample), dtype=torch.int32, device=dev)
        self.next_row = self.rows
        self.generations = 0

    def next(self) -> torch.Tensor:
        """(n_sample,) int32 ids on the device (a view into the store)."""
        if self.next_row == self.rows:
            self._draw()
        row = self.store[self.next_row]
        self.next_row += 1
        return row

    def _draw(self) -> None:
        flat = self.store.view(-1)
        cdf, stream = kernel_array(self.cdf), launch_stream()
        for start in range(0, flat.numel(), self.CHUNK):      # bounded temporary memory, the CPU store's chunks
            part = flat[start:start + self.CHUNK]
            if self.rng is not None:
                uniforms = torch.from_numpy(self.rng.random(part.numel())).to(self.dev)
            else:
                uniforms = torch.rand(part.numel(), dtype=torch.float64, device=self.dev, generator=self.generator)
            launch_draw_samples(cdf, kernel_array(uniforms), kernel_array(part), stream)
        self.next_row = 0
        self.generations += 1


class DeviceDropout:
    """``train.DropoutMasks`` on the device: masks in {0, 1/(1-p)}, empty tensors where p == 0."""

    def __init__(self, params: Hyperparameters, input_width: int, dev, *, rng: np.random.Generator | None = None,
                 generator: torch.Generator | None = None):
        B = params.batch_size
        self.host = DropoutMasks(params, input_width, rng) if rng is not None else None
        self.generator = generator
        self.p_embed, self.p_hidden = params.dropout_p_embed, params.dropout_p_hidden
        self.embed = torch.zeros((B, input_width) if self.p_embed > 0 else (0, 0), device=dev)
        self.hidden = [torch.zeros((B, h) if self.p_hidden > 0 else (0, 0), device=dev) for h in params.layers]

    def draw(self, M: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.host is not None:
            embed, hidden = self.host.draw(M)
            return self._upload(self.embed, embed), [self._upload(b, h) for b, h in zip(self.hidden, hidden)]
        return self._fill(self.embed, M, self.p_embed), [self._fill(b, M, self.p_hidden) for b in self.hidden]

    def _fill(self, buf: torch.Tensor, M: int, p: float) -> torch.Tensor:
        if p <= 0:
            return buf
        out = buf[:M]
        out.bernoulli_(1.0 - p, generator=self.generator)    # 1 with probability 1 - p (kept)
        return out.mul_(1.0 / (1.0 - p))

    @staticmethod
    def _upload(buf: torch.Tensor, host: np.ndarray) -> torch.Tensor:
        if not host.size:
            return buf
        return buf[:len(host)].copy_(torch.from_numpy(host))


def train_cuda(data: SessionData, params: Hyperparameters, *, progress: Callable[[Progress], None] | None = None,
               progress_every: float = 0.5, max_steps: int | None = None, host_rng: bool = False,
               device: str | None = None, cuda_graphs: bool = True) -> TrainResult:
    """Train on the GPU (``device``: torch's, "cuda" by default; "cpu" under the CUDA simulator). Same arguments
    and result as ``train.train``; the weights come back to the host at the end. ``cuda_graphs``: replay the
    full-batch steps as a CUDA graph (cuda_graph.py; never under the simulator)."""
    dev = torch.device(device or torch_device())
    rng = np.random.default_rng(params.seed)
    weights = init_weights(data.n_items, params.layers, params.embedding_mode, params.embedding, rng)
    optim = OptimizerState.zeros_for(weights, params.momentum)
    step = CudaStep(weights, optim, params, device=dev)

    schedule = session_parallel(data.offsets, params.batch_size)
    n_steps = schedule.n_steps if max_steps is None else min(max_steps, schedule.n_steps)
    pairs = int(schedule.step_ptr[n_steps])

    def upload(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    in_items = upload(data.items[schedule.event].astype(np.int64))
    out_items = upload(data.items[schedule.event + 1].astype(np.int64))
    state_rows = upload(np.where(schedule.src < 0, step.zero_row, schedule.src).astype(np.int64))
    support = data.support()
    log_support = np.log(np.maximum(support, 1)).astype(np.float32)
    log_support_t, log_sample_t = upload(log_support), upload(log_support * np.float32(params.sample_alpha))
    generator = None if host_rng else torch.Generator(device=dev).manual_seed(params.seed)
    host = rng if host_rng else None
    sampler = DeviceSampleStore(support, params.sample_alpha, params.n_sample, params.sample_store_size, dev,
                                rng=host, generator=generator)
    input_width = 1 if weights.mode == "onehot" else (weights.Wy if weights.E is None else weights.E).shape[1]
    dropout = DeviceDropout(params, input_width, dev, rng=host, generator=generator)
    use_log_q = params.loss == "cross-entropy" and params.logq > 0
    ptr = schedule.step_ptr[:n_steps + 1].tolist()

    def body(in_b, targets, samples, rows_b, mask_embed, masks_hidden) -> None:
        M = in_b.shape[0]
        log_q = None
        if use_log_q:        # targets are drawn by the data (Q = support), samples by support^alpha (spec §4)
            log_q = step.log_q_buffer(M + samples.shape[0])
            torch.index_select(log_support_t, 0, targets, out=log_q[:M])
            torch.index_select(log_sample_t, 0, samples, out=log_q[M:])
        step.run(in_b, targets, samples, rows_b, log_q, mask_embed, masks_hidden)

    graphed = StepGraph(body, params.batch_size, params.n_sample, dev) if cuda_graphs and not SIMULATOR else None
    result = TrainResult(weights=weights, pairs_per_epoch=pairs, steps_per_epoch=n_steps, device="cuda")
    log.info("training", extra={"sessions": data.n_sessions, "pairs": pairs, "items": data.n_items,
                                "steps": n_steps, "impl": "fast", "device": str(dev)})
    for epoch in range(1, params.n_epochs + 1):
        loss_sum, done = 0.0, 0
        t0 = last_report = time.perf_counter()
        for t in range(n_steps):
            lo, hi = ptr[t], ptr[t + 1]
            M = hi - lo
            samples = sampler.next()
            mask_embed, masks_hidden = dropout.draw(M)
            run = graphed if graphed is not None and M == params.batch_size else body
            run(in_items[lo:hi], out_items[lo:hi], samples, state_rows[lo:hi], mask_embed, masks_hidden)
            done += M
            if progress and time.perf_counter() - last_report >= progress_every:
                loss_sum += _take_loss(step, epoch, t)
                now = last_report = time.perf_counter()
                progress(Progress(epoch, params.n_epochs, done, pairs, loss_sum / done, done / (now - t0)))
        loss_sum += _take_loss(step, epoch, n_steps)         # waits for the epoch's last step
        seconds = time.perf_counter() - t0
        end_epoch(result, params, epoch, loss_sum, done, seconds, progress)
    step.store(weights, optim)
    result.cuda_graph = graphed.status if graphed is not None else "off"
    return result


def _take_loss(step: CudaStep, epoch: int, t: int) -> float:
    loss = step.take_loss()
    if not np.isfinite(loss):
        raise UpnextError(f"training diverged (loss {loss}) in epoch {epoch}, by step {t}: lower learning_rate")
    return loss
