"""The GRU4Rec training loop (spec §1-§5), top to bottom, as both devices run it:

    sessions in time order (never shuffled) -> session-parallel schedule (once)        ``plan_training``
    for each epoch, for each step:                                                        ``run_epochs``
        the active slots' input and target items, the slots' states (reset or carried: ``src``)
        n_sample popularity-sampled ids (one row of the pre-drawn store), logQ of every score column
        dropout masks (input rows, each layer's output)
        one step: forward, sampled loss, backward (1-step BPTT), Adagrad-momentum updates

What a step does is the business of a ``Steps``: ``train.HostSteps`` (numpy arrays on the host, the fast CPU step
or the torch reference step) or ``cuda_train.DeviceSteps`` (every array on the GPU). Both draw from the one
seeded generator of ``plan_training``, in the same order (weights, then per step the samples and the masks).

The step loss is the sum of the row losses divided by the CONFIGURED batch size, also in the shrinking tail of
an epoch. Spec §1 says "the real, possibly shrunken, row count"; that gives each of the last few pairs of an
epoch up to batch_size times the weight of any other pair, exactly when the most recent data is learnt, and on
rsc15-100k it cost 4% of MRR@20 against the reference figures (3 seeds each: MRR@20 0.336 with the real count,
0.351 with the configured size; the reference gave 0.352-0.356). With the configured size every training pair
weighs the same.

Nothing here imports torch.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from backend.errors import UpnextError
from backend.gru4rec.batches import Schedule, session_parallel
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.weights import GRU4RecWeights, init_weights
from backend.item_features import ItemFeatures
from backend.session_data import SessionData

log = logging.getLogger(__name__)


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


@dataclass
class Plan:
    """What both loops start from. ``rng`` has drawn the initial weights; the steps draw from it next."""
    rng: np.random.Generator
    weights: GRU4RecWeights
    optim: OptimizerState
    schedule: Schedule
    bounds: list[int]            # (n_steps + 1,) the first pair of each step, as Python ints (max_steps: fewer)
    in_items: np.ndarray         # (n_pairs,) int64 input item of every pair of the schedule
    out_items: np.ndarray        # (n_pairs,) int64 its target
    support: np.ndarray          # (n_items,) training counts: the sampling weights' base
    log_support: np.ndarray      # (n_items,) float32 log Q of a target (Q = support, at least 1)
    log_sample: np.ndarray       # (n_items,) float32 log Q of a sample (Q = support^sample_alpha)
    input_width: int             # columns of a step's input rows (1 in one-hot mode)
    items: np.ndarray | None = None        # params.served_training: the training events' items
    pair_start: np.ndarray | None = None   # ... and the first event of each pair's session (its seen items
                                           # are items[pair_start:event + 1])

    @property
    def n_steps(self) -> int:
        return len(self.bounds) - 1

    @property
    def pairs(self) -> int:
        """Training pairs per epoch."""
        return self.bounds[-1]

    def start(self, data: SessionData, impl: str, device: str, shown_device: str | None = None) -> TrainResult:
        """The empty result of this training, logged (``shown_device``: the device as the log shows it)."""
        log.info("training", extra={"sessions": data.n_sessions, "pairs": self.pairs, "items": data.n_items,
                                    "steps": self.n_steps, "impl": impl, "device": shown_device or device})
        return TrainResult(weights=self.weights, pairs_per_epoch=self.pairs, steps_per_epoch=self.n_steps,
                           device=device)


def plan_training(data: SessionData, params: Hyperparameters, max_steps: int | None,
                  features: ItemFeatures | None = None) -> Plan:
    """Seeded initial weights and optimiser state, the session-parallel schedule (``max_steps``, benchmarks:
    each epoch stops early) and the logQ tables (spec §4: targets are drawn by the data, samples by
    support^alpha)."""
    rng = np.random.default_rng(params.seed)
    if params.item_features and features is None:
        raise UpnextError("item_features=True needs item features: --item-features FILE, or a site's catalogue")
    features = features.aligned(data.item_ids) if params.item_features else None
    weights = init_weights(data.n_items, params.layers, params.embedding_mode, params.embedding, rng, features)
    weights.id_scale = params.id_scale("serve")
    optim = OptimizerState.zeros_for(weights, params.momentum)
    schedule = session_parallel(data.offsets, params.batch_size)
    n_steps = schedule.n_steps if max_steps is None else min(max_steps, schedule.n_steps)
    support = data.support()
    log_support = np.log(np.maximum(support, 1)).astype(np.float32)
    input_width = 1 if weights.mode == "onehot" else (weights.Wy if weights.E is None else weights.E).shape[1]
    served = {}
    if params.served_training:
        starts = np.repeat(data.offsets[:-1], data.lengths).astype(np.int64)
        served = {"items": data.items, "pair_start": starts[schedule.event]}
    return Plan(rng=rng, weights=weights, optim=optim, schedule=schedule,
                bounds=schedule.step_ptr[:n_steps + 1].tolist(),
                in_items=data.items[schedule.event].astype(np.int64),
                out_items=data.items[schedule.event + 1].astype(np.int64),
                support=support, log_support=log_support,
                log_sample=log_support * np.float32(params.sample_alpha), input_width=input_width, **served)


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


class Steps(Protocol):
    """One device's training steps, as ``run_epochs`` drives them."""

    def start_epoch(self) -> None:
        """The epoch's loss sum back to zero."""

    def run(self, epoch: int, t: int) -> int:
        """Step ``t`` of the schedule (the inputs drawn as the module docstring lists them); its pair count."""

    def loss_sum(self, epoch: int, t: int) -> float:
        """The sum of the epoch's row losses through step ``t`` (the GPU waits for it here); raises when it
        is not finite."""


def run_epochs(steps: Steps, result: TrainResult, params: Hyperparameters,
               progress: Callable[[Progress], None] | None, progress_every: float) -> None:
    """Every epoch: every step of the schedule in order, ``progress`` about every ``progress_every`` seconds
    and at the end of the epoch, whose mean row loss and time go into ``result``."""
    for epoch in range(1, params.n_epochs + 1):
        steps.start_epoch()
        done = 0
        t0 = last_report = time.perf_counter()
        for t in range(result.steps_per_epoch):
            done += steps.run(epoch, t)
            if progress and time.perf_counter() - last_report >= progress_every:
                loss_sum = steps.loss_sum(epoch, t)
                now = last_report = time.perf_counter()
                progress(Progress(epoch, params.n_epochs, done, result.pairs_per_epoch, loss_sum / done,
                                  done / (now - t0)))
        loss_sum = steps.loss_sum(epoch, result.steps_per_epoch)        # the GPU: waits for the last step
        end_epoch(result, params, epoch, loss_sum, done, time.perf_counter() - t0, progress)


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


def check_loss(loss: float, epoch: int, t: int, *, summed: bool = False) -> float:
    """``loss``, unless training diverged (``summed``: the loss of all steps up to ``t``, on the GPU)."""
    if not np.isfinite(loss):
        raise UpnextError(f"training diverged (loss {loss}) in epoch {epoch}, {'by ' if summed else ''}step {t}: "
                          "lower learning_rate")
    return loss
