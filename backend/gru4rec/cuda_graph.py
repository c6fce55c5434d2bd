"""A full-batch GPU training step replayed as a CUDA graph: one launch instead of about 40.

At layers=100, batch 32 a step's kernels are tiny (a few microseconds each on the GPU), so launching them one by
one from Python costs more than running them: the eager step runs at about 900 mini-batches/s on an H200, limited
by the host. Every full-batch step (M = batch_size rows; only the last steps of an epoch have fewer) launches the
same kernels on the same buffers with the same sizes, so the step is captured once (``torch.cuda.graph``; the
Numba-CUDA kernels are launched on torch's current stream, which is the capture stream then) and replayed.

The graph reads its inputs from static buffers: each step copies its slices of the epoch schedule and its row of
the sample store into them (4 small device copies) before the replay. Dropout masks are drawn before the replay
into the buffers that the step was captured with (``cuda_train.DeviceDropoutMasks`` always fills the same storage).
The first ``WARMUP`` full-batch steps run eagerly on a side stream, as torch asks before a capture (lazy
initialisation of cuBLAS and the kernels' modules must not happen during it). A capture that fails (a driver or
numba-cuda that cannot be captured) is reported once and the loop goes on eagerly: nothing is lost, the step
that failed to be captured runs eagerly.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch

log = logging.getLogger(__name__)

WARMUP = 3


class StepGraph:
    """Runs ``body(in_items, targets, samples, state_rows, mask_embed, masks_hidden)`` for full batches of
    ``batch_size`` rows and ``n_sample`` samples: eagerly for the first WARMUP calls, then as a graph replay.
    ``status`` says what happened ("replayed N steps", or why not)."""

    def __init__(self, body: Callable, batch_size: int, n_sample: int, dev: torch.device):
        i64 = dict(dtype=torch.int64, device=dev)
        self.body = body
        self.in_items = torch.zeros(batch_size, **i64)
        self.targets = torch.zeros(batch_size, **i64)
        self.samples = torch.zeros(n_sample, dtype=torch.int32, device=dev)
        self.state_rows = torch.zeros(batch_size, **i64)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.side = torch.cuda.Stream(device=dev)
        self.eager_calls = self.replays = 0
        self.failure = ""

    @property
    def status(self) -> str:
        if self.failure:
            return f"not used: {self.failure}"
        return f"replayed {self.replays} steps" if self.graph is not None else "not captured (too few full steps)"

    def __call__(self, in_items, targets, samples, state_rows, mask_embed, masks_hidden) -> None:
        if self.failure:
            self.body(in_items, targets, samples, state_rows, mask_embed, masks_hidden)
            return
        self.in_items.copy_(in_items)
        self.targets.copy_(targets)
        self.samples.copy_(samples)
        self.state_rows.copy_(state_rows)
        args = (self.in_items, self.targets, self.samples, self.state_rows, mask_embed, masks_hidden)
        if self.graph is None and self.eager_calls < WARMUP:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                self.body(*args)
            torch.cuda.current_stream().wait_stream(self.side)
            self.eager_calls += 1
            return
        if self.graph is None and not self._capture(args):
            self.body(*args)                       # this step was not run by the failed capture: run it now
            return
        self.graph.replay()
        self.replays += 1

    def _capture(self, args) -> bool:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.body(*args)
        except Exception as exc:                   # noqa: BLE001  reported, then eager from here on
            self.failure = f"the CUDA graph capture failed ({type(exc).__name__}: {exc})"
            log.warning("training without CUDA graphs", extra={"reason": self.failure})
            torch.cuda.synchronize()
            return False
        self.graph = graph
        return True
