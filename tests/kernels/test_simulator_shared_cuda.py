"""The simulator's shared arrays, as tests/support/cuda.py fixes them: every thread of a block gets one array."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from numba import cuda, float32

from tests.support.cuda import host, quick_thread_switches, skip_without_cuda, to_kernel  # noqa: F401

skip_without_cuda()

from backend.kernels.cuda_interop import ROW_THREADS, SIMULATOR  # noqa: E402
from backend.kernels.cuda_loss import _block_max  # noqa: E402


@cuda.jit
def _row_max(values, out):
    buf = cuda.shared.array(ROW_THREADS, float32)
    out[0] = _block_max(buf, cuda.threadIdx.x, values[cuda.threadIdx.x])


def test_a_block_reduction_sees_every_thread_in_the_first_block_of_every_launch():
    """Launch after launch: each launch makes new shared arrays, the first block's threads race to create them."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        values = rng.normal(size=ROW_THREADS).astype(np.float32)
        out = to_kernel(np.zeros(1, np.float32))
        _row_max[1, ROW_THREADS](to_kernel(values), out)
        assert host(out)[0] == values.max()


@pytest.mark.skipif(not SIMULATOR, reason="the simulator's allocation only")
def test_threads_reaching_a_shared_array_line_together_get_the_same_array():
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    for _ in range(200):
        shared = FakeCUDAShared(0)
        start = threading.Barrier(8)
        got = []

        def reach():
            start.wait()
            got.append(shared.array(4, np.float32))

        threads = [threading.Thread(target=reach) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(a) for a in got}) == 1
