"""The GRU4Rec training loop on a GPU (``train.train(..., device="cuda")``): loop.py's loop with every array on
the device and a ``cuda_step.CudaStep``: ``DeviceSteps``, the twin of ``train.HostSteps``.

The epoch's schedule (input item, target item and state row of every training pair) is uploaded once and a step
slices it; the store of popularity-sampled negatives is drawn on the device by the ``draw_popularity_samples``
kernel and consumed one row per step; dropout masks come from torch's generator on the device. The host only
queues work: it waits for the GPU when it reports progress (which reads the loss) and at the end of an epoch.
Full-batch steps are replayed as a CUDA graph (cuda_graph.py).

With ``host_rng=True`` the store's uniforms and the dropout masks come from the CPU trainer's numpy generator,
in the CPU trainer's order: the GPU then follows the CPU trainer's trajectory up to float rounding (tests). It is
slower: masks are drawn on the CPU and copied every step. The item-feature models' ID dropout (``id_dropout``)
needs no generator on either side: both drop the ID rows that a hash of (item, step number, seed) picks, so they
drop the same ones in both modes (kernels/features_cuda.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from backend.errors import UpnextError
from backend.gru4rec.cuda_graph import StepGraph
from backend.gru4rec.cuda_step import CudaStep
from backend.gru4rec.loop import DropoutMasks, Plan, Progress, TrainResult, check_loss, plan_training, run_epochs
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.sampler import RowStore, popularity_cdf, store_rows
from backend.item_features import ItemFeatures
from backend.kernels.cuda_interop import SIMULATOR, kernel_array, launch_stream, torch_device
from backend.kernels.training_cuda import launch_draw_samples
from backend.session_data import SessionData


def train_cuda(data: SessionData, params: Hyperparameters, *, progress: Callable[[Progress], None] | None = None,
               progress_every: float = 0.5, max_steps: int | None = None, host_rng: bool = False,
               device: str | None = None, cuda_graphs: bool = True,
               features: ItemFeatures | None = None) -> TrainResult:
    """Train on the GPU (``device``: torch's, "cuda" by default; "cpu" under the CUDA simulator). Same arguments
    and result as ``train.train``; the weights come back to the host at the end. ``cuda_graphs``: replay the
    full-batch steps as a CUDA graph (cuda_graph.py; never under the simulator). ``features``: as for
    ``train.train``."""
    dev = torch.device(device or torch_device())
    if params.id_scale("train") != 1.0:
        raise UpnextError(f"id_dropout_scaling={params.id_dropout_scaling}: the GPU path does not implement it; "
                          "train on the CPU (--device cpu)")
    plan = plan_training(data, params, max_steps, features)
    steps = DeviceSteps(plan, params, dev, host_rng=host_rng, cuda_graphs=cuda_graphs)
    result = plan.start(data, "fast", "cuda", shown_device=str(dev))
    run_epochs(steps, result, params, progress, progress_every)
    steps.step.store(plan.weights, plan.optim)
    result.cuda_graph = steps.graph.status if steps.graph is not None else "off"
    return result


class DeviceSteps:
    """The steps of loop.py's loop with every array on the device; full batches run as a CUDA graph."""

    def __init__(self, plan: Plan, params: Hyperparameters, dev: torch.device, *, host_rng: bool,
                 cuda_graphs: bool):
        self.step = step = CudaStep(plan.weights, plan.optim, params, device=dev)

        def upload(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

        self.bounds, self.batch_size = plan.bounds, params.batch_size
        self.state_rows = upload(np.where(plan.schedule.src < 0, step.zero_row, plan.schedule.src).astype(np.int64))
        self.in_items, self.out_items = upload(plan.in_items), upload(plan.out_items)
        self.log_support, self.log_sample = upload(plan.log_support), upload(plan.log_sample)
        generator = None if host_rng else torch.Generator(device=dev).manual_seed(params.seed)
        host = plan.rng if host_rng else None
        self.sampler = DeviceSampleStore(plan.support, params.sample_alpha, params.n_sample,
                                         params.sample_store_size, dev, rng=host, generator=generator)
        self.dropout = DeviceDropoutMasks(params, plan.input_width, dev, rng=host, generator=generator)
        self.use_log_q = params.loss == "cross-entropy" and params.logq > 0
        self.graph = (StepGraph(self.body, params.batch_size, params.n_sample, dev)
                      if cuda_graphs and not SIMULATOR else None)
        self._loss_sum = 0.0

    def start_epoch(self) -> None:
        self._loss_sum = 0.0

    def run(self, epoch: int, t: int) -> int:
        lo, hi = self.bounds[t], self.bounds[t + 1]
        M = hi - lo
        samples = self.sampler.next()
        mask_embed, masks_hidden = self.dropout.draw(M)
        run = self.graph if self.graph is not None and M == self.batch_size else self.body
        run(self.in_items[lo:hi], self.out_items[lo:hi], samples, self.state_rows[lo:hi], mask_embed, masks_hidden)
        return M

    def body(self, inputs, targets, samples, state_rows, mask_embed, masks_hidden) -> None:
        """One step on device tensors (what the CUDA graph captures)."""
        M = inputs.shape[0]
        log_q = None
        if self.use_log_q:   # targets are drawn by the data (Q = support), samples by support^alpha (spec §4)
            log_q = self.step.log_q_buffer(M + samples.shape[0])
            torch.index_select(self.log_support, 0, targets, out=log_q[:M])
            torch.index_select(self.log_sample, 0, samples, out=log_q[M:])
        self.step.run(inputs, targets, samples, state_rows, log_q, mask_embed, masks_hidden)

    def loss_sum(self, epoch: int, t: int) -> float:
        self._loss_sum += check_loss(self.step.take_loss(), epoch, t, summed=True)
        return self._loss_sum


class DeviceSampleStore(RowStore):
    """``sampler.SampleStore`` on the device: (rows, n_sample) int32 ids drawn ahead, one row per step."""

    def __init__(self, support: np.ndarray, sample_alpha: float, n_sample: int, store_size: int, dev, *,
                 rng: np.random.Generator | None = None, generator: torch.Generator | None = None):
        self.cdf = torch.from_numpy(popularity_cdf(support, sample_alpha, n_sample)).to(dev)   # float64
        self.dev, self.rng, self.generator = dev, rng, generator
        super().__init__(torch.zeros((store_rows(store_size, n_sample), n_sample), dtype=torch.int32, device=dev))

    def _fill(self, part: torch.Tensor) -> None:
        if self.rng is not None:
            uniforms = torch.from_numpy(self.rng.random(len(part))).to(self.dev)
        else:
            uniforms = torch.rand(len(part), dtype=torch.float64, device=self.dev, generator=self.generator)
        launch_draw_samples(kernel_array(self.cdf), kernel_array(uniforms), kernel_array(part), launch_stream())


class DeviceDropoutMasks:
    """``loop.DropoutMasks`` on the device: masks in {0, 1/(1-p)}, empty tensors where p == 0."""

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
