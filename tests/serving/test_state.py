"""Session states: history checks, LRU and idle eviction, an honest byte count, thread safety."""
from __future__ import annotations

import secrets
import threading
import tracemalloc

import numpy as np
import pytest

from backend.serving.state import RECENT, SessionState, SessionStateCache, history_matches

S = 100
MiB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def vec(x: float) -> np.ndarray:
    return np.full(S, x, np.float32)


def step(state: np.ndarray, item: int) -> np.ndarray:
    """A stand-in for the GRU: any function of (state, item) whose result depends on the order of items."""
    return state * 0.5 + item


def test_put_and_get_hold_copies():
    cache = SessionStateCache(S, 1 * MiB)
    state = vec(1.0)
    cache.put("a", state, list(range(30)), 30)
    state[:] = 9
    held = cache.get("a")
    assert np.all(held.state == 1.0) and held.seen == 30 and held.recent.tolist() == list(range(10, 30))
    held.state[:] = 5
    assert np.all(cache.get("a").state == 1.0)
    assert cache.get("b") is None and "a" in cache and len(cache) == 1
    with pytest.raises(ValueError, match="a state is"):
        cache.put("c", np.zeros(S + 1), [], 0)


@pytest.mark.parametrize("recent, seen, history, complete, expected", [
    ([1, 2, 3], 3, [1, 2, 3], True, True),
    ([1, 2, 3], 3, [1, 2], True, False),        # the request has not seen item 3: memory is ahead of it
    ([2, 3], 2, [1, 2, 3], True, False),        # memory missed item 1 (it went to another process)
    ([1, 2, 3], 4, [1, 2, 3], True, False),     # memory saw one more item than the whole session holds
    ([], 0, [], True, True),
    (list(range(20)), 25, list(range(5, 20)), False, True),  # slid window: memory's last items end the same
    (list(range(20)), 25, list(range(4, 19)), False, False),
    ([7], 1, [6, 7], False, False),
])
def test_history_matches(recent, seen, history, complete, expected):
    held = SessionState(vec(0), np.array(recent, np.int64), seen, 0.0)
    assert history_matches(held, history, complete) is expected


def test_resolve_uses_memory_when_history_matches_and_rebuilds_otherwise():
    cache = SessionStateCache(S, 1 * MiB)
    rebuilt = []

    def rebuild(history):
        rebuilt.append(history.tolist())
        state = vec(0)
        for i in history:
            state = step(state, int(i))
        return state

    for item in (4, 5, 6):
        cache.advance("s", item, step, lambda: vec(0))
    held, was_rebuilt = cache.resolve("s", [4, 5, 6], True, rebuild)
    assert not was_rebuilt and rebuilt == []
    np.testing.assert_array_equal(held.state, rebuild(np.array([4, 5, 6])))
    rebuilt.clear()
    held, was_rebuilt = cache.resolve("s", [4, 5, 6, 9], True, rebuild)  # another process saw item 9
    assert was_rebuilt and rebuilt == [[4, 5, 6, 9]]
    assert cache.get("s").recent.tolist() == [4, 5, 6, 9] and cache.get("s").seen == 4
    _, was_rebuilt = cache.resolve("new", [], True, rebuild)
    assert was_rebuilt and np.all(cache.get("new").state == 0)


def test_least_recently_used_sessions_go_first():
    cache = SessionStateCache(S, 200_000)
    capacity = None
    for n in range(2000):
        cache.put(f"s{n}", vec(n), [n], 1)
        if n == 2:
            cache.get("s0")  # s0 is now used more recently than s1
        if capacity is None and cache.evictions:
            capacity = n
    assert capacity == cache.capacity == len(cache) and cache.bytes_used <= 200_000
    assert "s1999" in cache and "s1" not in cache
    kept = [n for n in range(2000) if f"s{n}" in cache]
    assert kept == list(range(2000 - len(kept), 2000))  # exactly the most recent ones
    assert np.all(cache.get("s1999").state == 1999)  # rows reused by new sessions hold the new values


def test_idle_sessions_expire():
    clock = Clock()
    cache = SessionStateCache(S, 1 * MiB, idle_s=1800, clock=clock)
    cache.put("old", vec(1), [1], 1)
    clock.now += 1000
    cache.put("recent", vec(2), [2], 1)
    clock.now += 900
    assert cache.get("old") is None and cache.get("recent") is not None
    clock.now += 1801
    assert cache.expire() == 1 and len(cache) == 0 and cache.expirations == 2


def test_budget_can_shrink():
    cache = SessionStateCache(S, 4 * MiB)
    for n in range(3000):
        cache.put(f"s{n}", vec(n), [n], 1)
    assert len(cache) == 3000
    cache.set_budget(1 * MiB)
    assert cache.bytes_used <= 1 * MiB
    cache.put("after", vec(1), [1], 1)
    assert "after" in cache and cache.bytes_used <= 1 * MiB
    cache.set_budget(100_000)  # less than one chunk of the current size: starts over with smaller chunks
    assert cache.bytes_used <= 100_000
    for n in range(500):
        cache.put(f"t{n}", vec(n), [n], 1)
    assert 0 < len(cache) == cache.capacity < 500 and cache.bytes_used <= 100_000


def test_bytes_used_is_the_memory_actually_held():
    budget = 8 * MiB
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        cache = SessionStateCache(S, budget)
        state = vec(0.5)
        peak_held = 0
        for n in range(30_000):
            cache.put(secrets.token_urlsafe(16), state, [n, n + 1], 2)  # ids as the widget makes them
            if n % 1000 == 999:
                held = tracemalloc.get_traced_memory()[0] - base
                peak_held = max(peak_held, held)
                accounted = cache.bytes_used
                assert accounted <= budget and held <= budget
                assert 0.9 * held <= accounted <= 1.1 * held + 64 * 1024, (held, accounted)
    finally:
        tracemalloc.stop()
    # the budget was used and never overrun; a full cache stays full (an index resize evicts nobody extra)
    assert cache.evictions > 0 and peak_held > 0.8 * budget and len(cache) == cache.capacity


def test_concurrent_use_keeps_the_cache_consistent():
    cache = SessionStateCache(S, 300_000)
    errors = []

    def worker(w: int) -> None:
        rng = np.random.default_rng(w)
        try:
            for _ in range(3000):
                sid = f"s{rng.integers(0, 600)}"
                if rng.random() < 0.5:
                    cache.advance(sid, int(rng.integers(0, 100)), step, lambda: vec(0))
                else:
                    held = cache.get(sid)
                    assert held is None or len(held.recent) == min(held.seen, RECENT)
        except Exception as exc:  # collected: a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.bytes_used <= 300_000 and len(cache._slots) + len(cache._free) == sum(len(c) for c in cache._states)
