import pytest

from backend.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_bucket_refills_at_rate_and_caps_at_burst():
    clock = Clock()
    rl = RateLimiter(10, 20, clock=clock)
    assert rl.take("k", 20) == 0
    assert rl.take("k", 1) == pytest.approx(0.1)
    clock.t = 0.5
    assert rl.take("k", 5) == 0 and rl.take("k", 1) > 0
    clock.t = 100
    assert rl.take("k", 20) == 0 and rl.take("k", 1) > 0     # capped at burst, not 1000 saved up


def test_names_are_independent_and_idle_ones_are_forgotten():
    clock = Clock()
    rl = RateLimiter(1, 2, clock=clock)
    assert rl.take("a", 2) == 0 and rl.take("a") > 0 and rl.take("b", 2) == 0
    clock.t = 120
    rl.take("c")
    assert len(rl) == 1


def test_give_back_and_bad_arguments():
    rl = RateLimiter(1, 2, clock=Clock())
    rl.take("a", 2)
    rl.give_back("a", 2)
    assert rl.take("a", 2) == 0
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
