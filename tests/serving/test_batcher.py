"""Requests scored together get exactly the answers they would get alone."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from backend.serving.batcher import TopKBatcher
from backend.serving.engine import GRU4RecEngine
from tests.serving.conftest import N_ITEMS


def test_batched_answers_equal_single_answers(artifacts):
    engine = GRU4RecEngine.load(artifacts["separate"])
    rng = np.random.default_rng(3)
    masks = [None, (np.arange(N_ITEMS) % 2 == 0)]
    requests = [(engine.state_from_history(rng.integers(0, N_ITEMS, n)), int(rng.integers(1, 30)),
                 rng.integers(0, N_ITEMS, int(rng.integers(0, 6))).tolist(), masks[n % 2]) for n in range(40)]

    batch_sizes = []
    top_k_many = engine.top_k_many
    engine.top_k_many = lambda states, *a: batch_sizes.append(len(states)) or top_k_many(states, *a)

    async def serve():
        batcher = TopKBatcher(engine, max_batch=8, max_wait_s=0.005)
        bad = batcher.top_k(requests[0][0], 5, [N_ITEMS + 1])  # out of range: refused alone
        return await asyncio.gather(bad, *(batcher.top_k(*r) for r in requests), return_exceptions=True)

    bad, *answers = asyncio.run(serve())
    assert isinstance(bad, ValueError)
    assert batch_sizes and max(batch_sizes) == 8 and sum(batch_sizes) >= 30  # most were scored together
    for (state, k, exclude, available), (items, scores) in zip(requests, answers):
        want_i, want_s = engine.top_k(state, k, exclude, available)
        np.testing.assert_array_equal(items, want_i)
        np.testing.assert_allclose(scores, want_s, rtol=1e-5, atol=1e-5)


class FailingEngine:
    """Checks requests like the real engine, then fails to score them."""

    def __init__(self, engine: GRU4RecEngine) -> None:
        self.check_request = engine.check_request

    def top_k(self, *args):
        raise RuntimeError("scoring failed")

    top_k_many = top_k


def test_a_failing_batch_fails_each_of_its_requests(artifacts):
    engine = GRU4RecEngine.load(artifacts["shared"])
    batcher = TopKBatcher(FailingEngine(engine), max_wait_s=0.001)

    async def serve():
        return await asyncio.gather(*(batcher.top_k(engine.zero_state(), 3) for _ in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(serve())
    assert len(results) == 3 and all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(ValueError, match="k must be"):
        asyncio.run(batcher.top_k(engine.zero_state(), 0))
