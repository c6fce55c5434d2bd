"""Training GRU4Rec: ``train``, the entry point, and loop.py's loop with every array on the host.

``train`` resolves the device (device.py; ``device="auto"`` picks the GPU when there is one) and runs
``cuda_train.train_cuda`` for the fast step on a GPU, ``train_host`` otherwise. There the loop's steps are
``HostSteps``: the sample store and the dropout masks are numpy arrays drawn from the plan's seeded generator,
and the step is ``fast.FastStep`` (default) or ``reference_step.ReferenceStep`` (plain torch autograd, also on a
GPU: ``device="cuda"``). Both steps take the same inputs, so they follow the same trajectory; so does the GPU
loop with ``host_rng=True``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from backend.errors import UpnextError
from backend.gru4rec.device import resolve_device
from backend.gru4rec.fast import FastStep
from backend.gru4rec.loop import DropoutMasks, Plan, Progress, TrainResult, check_loss, plan_training, run_epochs
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.sampler import SampleStore
from backend.gru4rec.threads import BlasThreads, thread_candidates
from backend.gru4rec.weights import GRU4RecWeights
from backend.item_features import ItemFeatures
from backend.session_data import SessionData

IMPLEMENTATIONS = ("fast", "reference")


def train(data: SessionData, params: Hyperparameters, *, impl: str = "fast", device: str = "cpu",
          progress: Callable[[Progress], None] | None = None, progress_every: float = 0.5,
          max_steps: int | None = None, threads: int | None = None, host_rng: bool = False,
          cuda_graphs: bool = True, features: ItemFeatures | None = None) -> TrainResult:
    """Train on ``data`` (sessions in training order). ``device``: "cpu", "cuda" or "auto" (device.py).
    ``progress`` is called about every ``progress_every`` seconds and at the end of each epoch. ``max_steps``
    (benchmarks) stops each epoch early. ``threads`` fixes the BLAS threads of the fast CPU step (default:
    measured while training, see threads.py). ``host_rng``: the fast GPU path draws its samples and dropout
    masks with this loop's generator, following the CPU trajectory (cuda_train.py; tests). ``cuda_graphs``: the
    fast GPU path replays its full-batch steps as a CUDA graph (cuda_graph.py; off: benchmarks, tests).
    ``features``: the items' features (backend/item_features.py), used when ``params.item_features``; items of
    ``data`` without a row get none."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS}")
    if data.n_sessions == 0 or not (data.lengths >= 2).any():
        raise UpnextError("no training session has two or more events: nothing to learn from")
    if params.served_training:
        if impl != "fast" or device == "cuda":
            raise UpnextError("mask_seen (training for the served setting) is implemented in "
                              "the fast CPU step only: use --device cpu (or auto) and --impl fast")
        device = "cpu"          # "auto" included: the GPU path does not have them
    if params.id_scale("train") != 1.0 and device == "auto":
        device = "cpu"          # inverted ID dropout is CPU only (cuda_train refuses it when asked by name)
    device = resolve_device(device, impl)
    if device == "cuda" and impl == "fast":
        from backend.gru4rec.cuda_train import train_cuda  # lazy: torch and numba-cuda only for GPU training
        return train_cuda(data, params, progress=progress, progress_every=progress_every, max_steps=max_steps,
                          host_rng=host_rng, cuda_graphs=cuda_graphs, features=features)
    if impl != "fast":          # the reference path runs as torch runs by default
        return train_host(data, params, impl=impl, device=device, progress=progress,
                          progress_every=progress_every, max_steps=max_steps, features=features)
    blas = BlasThreads([threads] if threads else thread_candidates(params))
    try:
        result = train_host(data, params, impl=impl, progress=progress, progress_every=progress_every,
                            max_steps=max_steps, blas=blas, features=features)
    finally:
        blas.close()
    result.thread_probes = blas.history
    return result


def train_host(data: SessionData, params: Hyperparameters, *, impl: str = "fast", device: str = "cpu",
               progress: Callable[[Progress], None] | None = None, progress_every: float = 0.5,
               max_steps: int | None = None, blas: BlasThreads | None = None,
               features: ItemFeatures | None = None) -> TrainResult:
    """loop.py's loop with ``HostSteps``; ``device`` "cuda" only for the reference step, whose weights come back
    to the host at the end. ``blas``: the fast step's BLAS threads, re-measured as training goes."""
    plan = plan_training(data, params, max_steps, features)
    step = make_step(impl, plan.weights, plan.optim, params, device)
    result = plan.start(data, impl, device)
    run_epochs(HostSteps(plan, params, step, blas), result, params, progress, progress_every)
    if device != "cpu":
        step.store(plan.weights, plan.optim)        # the reference step on a GPU: weights back to the host
    return result


def make_step(impl: str, weights: GRU4RecWeights, optim: OptimizerState, params: Hyperparameters,
              device: str = "cpu"):
    if impl == "fast" and device == "cpu":
        return FastStep(weights, optim, params)
    if impl == "reference":
        from backend.gru4rec.reference_step import ReferenceStep  # lazy: torch only for the reference step
        return ReferenceStep(weights, optim, params, device=device)
    raise ValueError(f"impl must be one of {IMPLEMENTATIONS} (the fast GPU step runs in cuda_train)")


class HostSteps:
    """The steps of loop.py's loop with numpy arrays on the host; ``step`` takes them (and, for the reference
    step on a GPU, copies them over)."""

    def __init__(self, plan: Plan, params: Hyperparameters, step, blas: BlasThreads | None):
        self.step, self.blas = step, blas
        self.bounds, self.src = plan.bounds, plan.schedule.src
        self.in_items, self.out_items = plan.in_items, plan.out_items
        self.events, self.items, self.pair_start = plan.schedule.event, plan.items, plan.pair_start
        self.log_support, self.log_sample = plan.log_support, plan.log_sample
        self.sampler = SampleStore(plan.support, params.sample_alpha, params.n_sample, params.sample_store_size,
                                   plan.rng)
        self.dropout = DropoutMasks(params, plan.input_width, plan.rng)
        self.log_q = np.zeros(params.batch_size + params.n_sample, np.float32)
        self._loss_sum = 0.0

    def start_epoch(self) -> None:
        self._loss_sum = 0.0

    def run(self, epoch: int, t: int) -> int:
        lo, hi = self.bounds[t], self.bounds[t + 1]
        M = hi - lo
        inputs, targets = self.in_items[lo:hi], self.out_items[lo:hi]
        samples = self.sampler.next()
        # logQ: targets are drawn by the data (Q = support), samples by support^alpha (spec §4)
        log_q = self.log_q[:M + len(samples)]
        np.take(self.log_support, targets, out=log_q[:M])
        np.take(self.log_sample, samples, out=log_q[M:])
        mask_embed, masks_hidden = self.dropout.draw(M)
        seen = None if self.items is None else (self.items, self.pair_start[lo:hi], self.events[lo:hi])
        loss = self.step(inputs, targets, samples, self.src[lo:hi], log_q, mask_embed, masks_hidden,
                         **({"seen": seen} if seen else {}))
        self._loss_sum += check_loss(loss, epoch, t)
        if self.blas:
            self.blas.step_done(M)
        return M

    def loss_sum(self, epoch: int, t: int) -> float:
        return self._loss_sum
