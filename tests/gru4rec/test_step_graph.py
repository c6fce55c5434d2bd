"""StepGraph (backend/gru4rec/cuda_graph.py) on the CPU, with torch's CUDA stream and graph calls replaced by fakes
that record what a GPU would run: every step runs once with its own inputs, whether it ran eagerly during the
warm-up, was captured and replayed, or ran eagerly after a failed capture. tests/gpu checks real graphs."""
from __future__ import annotations

import contextlib

import pytest
import torch

from backend.gru4rec.cuda_graph import WARMUP, StepGraph

B, S = 4, 3


class FakeCuda:
    """What StepGraph uses of torch.cuda; a body called inside ``graph()`` is recorded, not run."""

    def __init__(self, fail_capture: bool = False):
        self.capturing = None
        self.fail_capture = fail_capture
        self.captures = 0

    def install(self, monkeypatch):
        for name in ("Stream", "stream", "current_stream", "CUDAGraph", "graph", "synchronize"):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))

    def Stream(self, device=None):                  # noqa: N802  (torch's name)
        return self

    def wait_stream(self, other):
        pass

    def current_stream(self):
        return self

    @contextlib.contextmanager
    def stream(self, s):
        yield

    def synchronize(self):
        pass

    def CUDAGraph(self):                            # noqa: N802
        class Graph:
            recorded = None

            def replay(self):
                body, args = self.recorded
                body(*args)                         # the captured work, on the captured (static) tensors
        return Graph()

    @contextlib.contextmanager
    def graph(self, g, capture_error_mode="global"):
        self.captures += 1
        self.capturing = g
        try:
            yield
            if self.fail_capture:
                raise RuntimeError("operation not permitted when stream is capturing")
        finally:
            self.capturing = None


def _recording_body(fake: FakeCuda, ran: list):
    def body(in_items, targets, samples, state_rows, mask_embed, masks_hidden):
        if fake.capturing is not None:              # captured: the GPU runs it at each replay
            fake.capturing.recorded = (body, (in_items, targets, samples, state_rows, mask_embed, masks_hidden))
            return
        ran.append((in_items.tolist(), targets.tolist(), samples.tolist(), state_rows.tolist()))
    return body


def _steps(n):
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(0, 100, (B,), generator=g), torch.randint(0, 100, (B,), generator=g),
             torch.randint(0, 100, (S,), generator=g, dtype=torch.int32), torch.randint(0, B, (B,), generator=g))
            for _ in range(n)]


def _expected(steps):
    return [tuple(t.tolist() for t in step) for step in steps]


@pytest.mark.parametrize("fail_capture", [False, True])
def test_every_step_runs_once_with_its_own_inputs(monkeypatch, fail_capture):
    fake, ran = FakeCuda(fail_capture), []
    fake.install(monkeypatch)
    graphed = StepGraph(_recording_body(fake, ran), B, S, torch.device("cpu"))
    steps = _steps(WARMUP + 6)
    empty = torch.zeros(0, 0)
    for in_items, targets, samples, rows in steps:
        graphed(in_items, targets, samples, rows, empty, [empty])
    assert ran == _expected(steps)
    assert fake.captures == 1                       # captured once, whatever happened
    if fail_capture:
        assert graphed.status.startswith("not used: the CUDA graph capture failed (RuntimeError")
    else:
        assert graphed.status == "replayed 6 steps"


def test_too_few_full_steps_are_never_captured(monkeypatch):
    fake, ran = FakeCuda(), []
    fake.install(monkeypatch)
    graphed = StepGraph(_recording_body(fake, ran), B, S, torch.device("cpu"))
    steps = _steps(WARMUP)
    for in_items, targets, samples, rows in steps:
        graphed(in_items, targets, samples, rows, torch.zeros(0, 0), [])
    assert ran == _expected(steps) and fake.captures == 0
    assert graphed.status == "not captured (too few full steps)"
