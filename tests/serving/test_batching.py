import threading

import numpy as np
import pytest

from backend.serving.batching import ScoreBatcher
from backend.serving.engine import GRU4RecEngine


@pytest.fixture(scope="module")
def engine(artifacts):
    return GRU4RecEngine.load(artifacts["shared"])


def test_concurrent_requests_get_their_own_answers_and_share_passes(engine):
    batcher = ScoreBatcher(engine, max_batch=8)
    rng = np.random.default_rng(1)
    masks = [None, (rng.random(engine.n_items) < 0.7).astype(np.uint8)]
    jobs = []
    for j in range(200):
        state = engine.state_from_history(rng.integers(0, engine.n_items, 3))
        exclude = rng.integers(0, engine.n_items, j % 5)
        jobs.append((state, 1 + j % 12, exclude, masks[j % 2]))
    results = [None] * len(jobs)
    start = threading.Barrier(16)

    def worker(w):
        start.wait()
        for j in range(w, len(jobs), 16):
            results[j] = batcher.top_k(*jobs[j])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for (state, k, exclude, mask), got in zip(jobs, results):
        want = engine.top_k(state, k, exclude, mask)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert batcher.requests == len(jobs) and batcher.passes <= len(jobs)


def test_a_bad_request_fails_alone(engine):
    batcher = ScoreBatcher(engine)
    with pytest.raises(ValueError):
        batcher.top_k(np.zeros(3, np.float32), 5)
    state = engine.state_from_history([1])
    assert len(batcher.top_k(state, 5)[0]) == 5
