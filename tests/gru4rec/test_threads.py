"""The BLAS thread chooser: probes each candidate, keeps the fastest, re-probes, restores on close."""
from threadpoolctl import threadpool_info

from backend.gru4rec.params import PRESETS
from backend.gru4rec.threads import BlasThreads, thread_candidates


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_small_steps_use_one_thread_and_large_ones_are_measured():
    assert thread_candidates(PRESETS["rsc15"], cores=2) == [1]
    assert thread_candidates(PRESETS["diginetica"], cores=2) == [1, 2]
    assert thread_candidates(PRESETS["diginetica"], cores=1) == [1]


def test_keeps_the_fastest_and_measures_again():
    before = _blas_threads()
    clock = FakeClock()
    blas = BlasThreads([1, 2], probe_seconds=1.0, probe_steps=3, exploit_seconds=10.0, clock=clock)
    step_seconds = {1: 0.1, 2: 0.3}                  # two threads are slower here (a busy machine)

    def run(seconds):
        end = clock.now + seconds
        while clock.now < end:
            clock.now += step_seconds[blas.current]
            blas.step_done(100)

    assert blas.current == 1                          # probing the first candidate
    assert _blas_threads() == [1] * len(before)
    run(2.5)
    assert [t for t, _ in blas.history] == [1, 2] and blas.current == 1
    assert blas.rates[1] > 2.5 * blas.rates[2]
    step_seconds = {1: 0.4, 2: 0.1}                   # the machine became idle: two threads win
    run(15.0)
    assert blas.current == 2 and [t for t, _ in blas.history][:4] == [1, 2, 1, 2]
    blas.close()
    assert _blas_threads() == before


def test_a_single_candidate_is_just_set():
    blas = BlasThreads([1])
    blas.step_done(10)
    assert blas.current == 1 and blas.history == []
    blas.close()
