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


def _blend_job(engine, rng, j):
    state = engine.state_from_history(rng.integers(0, engine.n_items, 3))
    nb = rng.integers(-1, engine.n_items, 6)
    nw = rng.random(6).astype(np.float32)
    return state, 1 + j % 12, nb, nw, [0.0, 0.35, 2.0][j % 3], rng.integers(0, engine.n_items, j % 5)


def test_blend_and_next_requests_of_many_threads_get_their_own_answers(engine):
    batcher = ScoreBatcher(engine, max_batch=8)
    rng = np.random.default_rng(2)
    mask = (rng.random(engine.n_items) < 0.7).astype(np.uint8)
    jobs = []
    for j in range(150):
        if j % 2:
            state, k, nb, nw, w, exclude = _blend_job(engine, rng, j)
            jobs.append(("blend", (state, k, nb, nw, w, exclude, mask)))
        else:
            jobs.append(("next", (engine.state_from_history([j % engine.n_items]), 5, (), mask)))
    results = [None] * len(jobs)
    start = threading.Barrier(16)

    def worker(w):
        start.wait()
        for j in range(w, len(jobs), 16):
            kind, args = jobs[j]
            results[j] = batcher.blend_top_k(*args) if kind == "blend" else batcher.top_k(*args)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for (kind, args), got in zip(jobs, results):
        want = engine.blend_top_k(*args) if kind == "blend" else engine.top_k(*args)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-7)
    assert batcher.requests == len(jobs)


def test_a_blend_pass_scores_its_requests_together_within_the_score_cap(engine, monkeypatch):
    """Waiting blend requests go in one pass (not with next-item requests), at most BLEND_SCORES // items."""
    from backend.serving import batching
    rng = np.random.default_rng(3)
    jobs = [_blend_job(engine, rng, j) for j in range(5)]
    batcher = ScoreBatcher(engine, max_batch=32)
    passes = []
    real = engine.blend_top_k_many

    def spy(states, *args):
        passes.append(len(states))
        return real(states, *args)
    monkeypatch.setattr(engine, "blend_top_k_many", spy)
    monkeypatch.setattr(batching, "BLEND_SCORES", 3 * engine.n_items)
    requests = [batching._Request(s, k, engine.check_request(s, k, ex)[2], None, (nb, nw, w))
                for s, k, nb, nw, w, ex in jobs]
    plain = batching._Request(engine.state_from_history([1]), 4, np.zeros(0, np.int64), None)
    batcher._pending = [requests[0], plain, *requests[1:]]
    batcher._leading = True
    batcher._lead()                  # takes the first three blend requests, the cap
    assert passes == [3] and [r.result is not None for r in requests] == [True] * 3 + [False] * 2
    assert plain.result is None and batcher._pending[0] is plain
    for (s, k, nb, nw, w, ex), r in zip(jobs, requests[:3]):
        want = engine.blend_top_k(s, k, nb, nw, w, ex)
        np.testing.assert_array_equal(r.result[0], want[0])
        np.testing.assert_allclose(r.result[1], want[1], rtol=1e-5, atol=1e-7)
