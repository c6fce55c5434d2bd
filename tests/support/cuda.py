"""What the Numba-CUDA tests share: where they can run, and moving their numpy arrays to the kernels' side.

They run under Numba's CUDA simulator (``make test`` runs the test_*cuda*.py files in a second pytest process with
NUMBA_ENABLE_CUDASIM=1, which must be set before numba is first imported) or on a real GPU (tests/bench/
gpu_check.sh runs them there too). Anywhere else they are skipped.
"""
from __future__ import annotations

import sys
import threading
import traceback

import numpy as np
import pytest

from backend.kernels.cuda_interop import SIMULATOR, gpu_available, to_host

SKIP_REASON = ("needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported (`make test` runs these files that way) "
               "or a CUDA GPU")


def skip_without_cuda() -> None:
    """Call at module level: skips the module unless the simulator or a GPU can run kernels."""
    if not (SIMULATOR or gpu_available()):
        pytest.skip(SKIP_REASON, allow_module_level=True)


@pytest.fixture(autouse=True, scope="module")
def quick_thread_switches():
    """Simulated threads wait for each other at every barrier; Python's default 5 ms switch interval makes a
    launch 4-6x slower than a 10 us one."""
    if not SIMULATOR:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _locked_shared_array(self, shape, dtype, alignment=None):
    """numba-cuda 0.30's FakeCUDAShared.array, with its check-then-create under a lock.

    The simulator keys a block's shared arrays by the calling line, and the first thread to reach the line creates
    the array. Without a lock, two threads of the first block can both find no array, each create one and go on
    with different buffers: a block reduction then reads another thread's uninitialised memory (CI once saw
    xe_rows' softmax overflow that way in block 0). Real GPUs have no such race."""
    from numba.np import numpy_support
    from numba.core import types

    if alignment is not None or shape == 0:
        return _original_shared_array(self, shape, dtype, alignment)
    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    caller = tuple(traceback.extract_stack(sys._getframe())[-2][0:2])
    with _shared_lock:
        res = self._allocations.get(caller)
        if res is None:
            res = self._allocations[caller] = np.empty(shape, dtype)
    return res


_shared_lock = threading.Lock()
_original_shared_array = None
if SIMULATOR:
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    _original_shared_array = FakeCUDAShared.array
    FakeCUDAShared.array = _locked_shared_array


def to_kernel(a: np.ndarray):
    """A copy of ``a`` where kernels take it: a device array (the simulator's, or in GPU memory)."""
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(a))


def host(a) -> np.ndarray:
    return to_host(a)
