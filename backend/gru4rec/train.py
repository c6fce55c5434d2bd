"""The GRU4Rec training loop (spec §1-§5), top to bottom.

    sessions in time order (never shuffled) -> session-parallel schedule (once)
    for each epoch, for each step:
        the active slots' input and target items, the slots' states (reset or carried: ``src``)
        n_sample popularity-sampled ids (one row of the pre-drawn store), logQ of every score column
        dropout masks (input rows, each layer's output)
        one step: forward, sampled loss, backward (1-step BPTT), Adagrad-momentum updates

The step is ``fast.FastStep`` (default) or ``reference.ReferenceStep`` (plain torch autograd); both take the
same inputs, drawn here from one seeded generator, so they follow the same trajectory. ``device="cuda"`` runs the
reference step with torch on the GPU, and the fast one as ``cuda_train`` (the same loop with every array on the
GPU and Numba-CUDA kernels for the hot parts); ``device="auto"`` picks the GPU when there is one (device.py).

The step loss is the sum of the row losses divided by the CONFIGURED batch size, also in the shrinking tail of
an epoch. Spec §1 says "the real, possibly shrunken, row count"; that gives each of the last few pairs of an
epoch up to batch_size times the weight of any other pair, exactly when the most recent data is learnt, and on
rsc15-100k it cost 4% of MRR@20 against the reference figures (3 seeds each: MRR@20 0.336 with the real count,
0.351 with the configured size; the reference gave 0.352-0.356). With the configured size every training pair
weighs the same.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from backend.errors import UpnextError
from backend.gru4rec.batches import session_parallel
from backend.gru4rec.weights import GRU4RecWeights, init_weights
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.sampler import SampleStore
from backend.gru4rec.threads import BlasThreads, thread_candidates
from backend.session_data import SessionData

log = logging.getLogger(__name__)

IMPLEMENTATIONS = ("fast", "reference")


@dataclass
class Progress:
    epoch: int            # 1-based
    n_epochs: int
    pairs_done: int       # in this epoch
    pairs_total: int      # per epoch
    loss: float           # mean row loss so far in this epoch
    events_per_second: float


@dataclass
class TrainResult:
    weights: GRU4RecWeights
    epoch_loss: list[float] = field(default_factory=list)         # mean row loss per epoch
    epoch_seconds: list[float] = field(default_factory=list)      # time in the step loop per epoch
    pairs_per_epoch: int = 0                                      # training events (input -> next item) per epoch
    steps_per_epoch: int = 0                                      # mini-batches per epoch
    device: str = "cpu"                                           # "cpu" or "cuda" (also when simulated)
    thread_probes: list = field(default_factory=list)             # (BLAS threads, events/s) measured
    cuda_graph: str = ""                                          # the GPU path's CUDA graph: used, or why not

    @property
    def events_per_second(self) -> float:
        """Training events (pairs) per second in the training loop, all epochs."""
        return self.pairs_per_epoch * len(self.epoch_seconds) / max(sum(self.epoch_seconds), 1e-9)


def end_epoch(result: TrainResult, params: Hyperparameters, epoch: int, loss_sum: float, done: int, seconds: float,
              progress: Callable[[Progress], None] | None) -> None:
    """Record an epoch's mean row loss and time (``done`` pairs in ``seconds``), log it and report it."""
    result.epoch_loss.append(loss_sum / max(done, 1))
    result.epoch_seconds.append(seconds)
    log.info("epoch", extra={"epoch": epoch, "loss": round(result.epoch_loss[-1], 5),
                             "seconds": round(seconds, 2), "events_per_s": round(done / seconds)})
    if progress:
        progress(Progress(epoch, params.n_epochs, done, result.pairs_per_epoch, result.epoch_loss[-1],
                          done / seconds))


class DropoutMasks:
    """Inverted-dropout masks, values in {0, 1/(1-p)}; empty arrays where p == 0 (spec §2)."""

    def __init__(self, params: Hyperparameters, input_width: int, rng: np.random.Generator):
        B = params.batch_size
        self.rng = rng
        self.p_embed, self.p_hidden = params.dropout_p_embed, params.dropout_p_hidden
        self.embed = np.zeros((B, input_width) if self.p_embed > 0 else (0, 0), np.float32)
        self.hidden = [np.zeros((B, h) if self.p_hidden > 0 else (0, 0), np.float32) for h in params.layers]

    def draw(self, M: int) -> tuple[np.ndarray, list[np.ndarray]]:
        embed = self._fill(self.embed, M, self.p_embed)
        return embed, [self._fill(buf, M, self.p_hidden) for buf in self.hidden]

    def _fill(self, buf: np.ndarray, M: int, p: float) -> np.ndarray:
        if p <= 0:
            return buf
        out = buf[:M]
        self.rng.random(out=out, dtype=np.float32)
        np.greater_equal(out, p, out=out)       # booleans as 0.0 / 1.0
        out *= np.float32(1.0 / (1.0 - p))
        return out


def make_step(impl: str, weights: GRU4RecWeights, optim: OptimizerState, params: Hyperparameters,
              device: str = "cpu"):
    if impl == "fast" and device == "cpu":
        from backend.gru4rec.fast import FastStep
        return FastStep(weights, optim, params)
    if impl == "reference":
        from backend.gru4rec.reference_step import ReferenceStep
        return ReferenceStep(weights, optim, params, device=device)
    raise ValueError(f"impl must be one of {IMPLEMENTATIONS} (the fast GPU step runs in cuda_train)")


def train(data: SessionData, params: Hyperparameters, *, impl: str = "fast", device: str = "cpu",
          progress: Callable[[Progress], None] | None = None, progress_every: float = 0.5,
          max_steps: int | None = None, threads: int | None = None, host_rng: bool = False,
          cuda_graphs: bool = True) -> TrainResult:
    """Train on ``data`` (sessions in training order). ``device``: "cpu", "cuda" or "auto" (device.py).
    ``progress`` is called about every ``progress_every`` seconds and at the end of each epoch. ``max_steps``
    (benchmarks) stops each epoch early. ``threads`` fixes the BLAS threads of the fast CPU step (default:
    measured while training, see threads.py). ``host_rng``: the fast GPU path draws its samples and dropout
    masks with this loop's generator, following the CPU trajectory (cuda_train.py; tests). ``cuda_graphs``: the
    fast GPU path replays its full-batch steps as a CUDA graph (cuda_graph.py; off: benchmarks, tests)."""
    from backend.gru4rec.device import resolve_device

    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS}")
    if data.n_sessions == 0 or not (data.lengths >= 2).any():
        raise UpnextError("no training session has two or more events: nothing to learn from")
    device = resolve_device(device, impl)
    if device == "cuda" and impl == "fast":
        from backend.gru4rec.cuda_train import train_cuda
        return train_cuda(data, params, progress=progress, progress_every=progress_every, max_steps=max_steps,
                          host_rng=host_rng, cuda_graphs=cuda_graphs)
    if impl != "fast":          # the reference path runs as torch runs by default
        return _train(data, params, impl, progress, progress_every, max_steps, None, device)
    blas = BlasThreads([threads] if threads else thread_candidates(params))
    try:
        result = _train(data, params, impl, progress, progress_every, max_steps, blas)
    finally:
        blas.close()
    result.thread_probes = blas.history
    return result


def _train(data, params, impl, progress, progress_every, max_steps, blas, device="cpu") -> TrainResult:
    rng = np.random.default_rng(params.seed)
    weights = init_weights(data.n_items, params.layers, params.embedding_mode, params.embedding, rng)
    optim = OptimizerState.zeros_for(weights, params.momentum)
    step = make_step(impl, weights, optim, params, device)

    schedule = session_parallel(data.offsets, params.batch_size)
    in_items = data.items[schedule.event].astype(np.int64)
    out_items = data.items[schedule.event + 1].astype(np.int64)
    support = data.support()
    log_support = np.log(np.maximum(support, 1)).astype(np.float32)
    log_sample = log_support * np.float32(params.sample_alpha)
    sampler = SampleStore(support, params.sample_alpha, params.n_sample, params.sample_store_size, rng)
    input_width = 1 if weights.mode == "onehot" else (weights.Wy if weights.E is None else weights.E).shape[1]
    dropout = DropoutMasks(params, input_width, rng)
    log_q = np.zeros(params.batch_size + params.n_sample, np.float32)
    n_steps = schedule.n_steps if max_steps is None else min(max_steps, schedule.n_steps)
    pairs = int(schedule.step_ptr[n_steps])

    result = TrainResult(weights=weights, pairs_per_epoch=pairs, steps_per_epoch=n_steps, device=device)
    log.info("training", extra={"sessions": data.n_sessions, "pairs": pairs, "items": data.n_items,
                                "steps": n_steps, "impl": impl, "device": device})
    for epoch in range(1, params.n_epochs + 1):
        loss_sum, done = 0.0, 0
        t0 = last_report = time.perf_counter()
        for t in range(n_steps):
            rows = schedule.rows(t)
            inp, out = in_items[rows], out_items[rows]
            M = len(inp)
            samples = sampler.next()
            # logQ: targets are drawn by the data (Q = support), samples by support^alpha (spec §4)
            lq = log_q[:M + len(samples)]
            np.take(log_support, out, out=lq[:M])
            np.take(log_sample, samples, out=lq[M:])
            mask_embed, masks_hidden = dropout.draw(M)
            loss = step(inp, out, samples, schedule.src[rows], lq, mask_embed, masks_hidden)
            if not np.isfinite(loss):
                raise UpnextError(f"training diverged (loss {loss}) in epoch {epoch}, step {t}: "
                                  "lower learning_rate")
            loss_sum += loss
            done += M
            if blas:
                blas.step_done(M)
            now = time.perf_counter()
            if progress and now - last_report >= progress_every:
                last_report = now
                progress(Progress(epoch, params.n_epochs, done, pairs, loss_sum / done, done / (now - t0)))
        seconds = time.perf_counter() - t0
        end_epoch(result, params, epoch, loss_sum, done, seconds, progress)
    if device != "cpu":
        step.store(weights, optim)              # the reference step on a GPU: weights back to the host
    return result
