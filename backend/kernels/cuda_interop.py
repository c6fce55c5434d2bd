"""Where the Numba-CUDA training kernels meet torch: arrays without copies, torch's stream, block sizes.

Two ways to run, chosen by numba itself before it is first imported:

- a real GPU: kernels take torch CUDA tensors through ``__cuda_array_interface__`` (``numba.cuda.as_cuda_array``
  of a ``.detach()``-ed tensor: no copy) and are launched on torch's current stream (``cuda.external_stream``), so
  they are ordered with the torch operations around them without any synchronisation;
- the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, tests): every simulated thread is a Python thread (about
  4,000 threads/s), torch tensors are CPU tensors. They are handed over as the simulator's own device arrays
  wrapping ``.numpy()`` views, not as numpy arrays, which the simulator would copy in and back out at every
  launch: that would hide what matters on a GPU (two arguments that are one array, writes in place).

Block sizes are smaller under the simulator (fewer Python threads, and strided loops still get exercised by
tiny shapes); they are powers of two because the loss kernels reduce with a tree in shared memory.
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
from numba import config, cuda

SIMULATOR = bool(config.ENABLE_CUDASIM)

ROW_THREADS = 4 if SIMULATOR else 128       # loss kernels: one block per score row
VECTOR_THREADS = 2 if SIMULATOR else 128    # row-wise update: one block per row, threads over its elements
FLAT_THREADS = 16 if SIMULATOR else 256     # elementwise kernels: grid-stride loops over the elements
MAX_FLAT_BLOCKS = 1 if SIMULATOR else 65535

# Small grids are normal here (a batch of 32 rows is 32 blocks); numba's occupancy warning would be noise.
config.CUDA_LOW_OCCUPANCY_WARNINGS = 0


def torch_device() -> str:
    """The torch device whose tensors the kernels can take: "cuda", or "cpu" under the simulator."""
    return "cpu" if SIMULATOR else "cuda"


def gpu_available() -> bool:
    """Whether numba-cuda can launch kernels: a GPU with a working driver, or the simulator."""
    try:
        return bool(cuda.is_available())
    except Exception:     # a broken driver or toolkit install reads as "no GPU"
        return False


def kernel_array(a):
    """A view of ``a`` that the kernels take, without a copy.

    ``a``: a torch tensor (CUDA on a GPU; CPU under the simulator), a numba device array, or (simulator only) a
    numpy array. A host array on a real GPU is refused: numba would copy it both ways on every launch.
    """
    if hasattr(a, "detach"):                       # torch
        t = a.detach()
        if SIMULATOR:
            if t.device.type != "cpu":
                raise ValueError(f"the CUDA simulator takes CPU tensors, got one on {t.device}")
            return _simulated_device_array(t.numpy())
        if t.device.type != "cuda":
            raise ValueError(f"CUDA kernels take CUDA tensors, got one on {t.device}")
        return cuda.as_cuda_array(t)
    if isinstance(a, np.ndarray):
        if SIMULATOR:
            return _simulated_device_array(a)
        raise TypeError("a numpy array was passed to a CUDA kernel: copy it to the GPU first")
    return a


def _simulated_device_array(a: np.ndarray):
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray  # lazy: exists only under the simulator

    return FakeCUDAArray(a)


def to_host(a) -> np.ndarray:
    """A numpy copy of a kernel array (tests, small results)."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy().copy()
    stream = launch_stream()
    out = a.copy_to_host(stream=stream)
    if stream != 0:
        stream.synchronize()
    return out


def device_zeros(shape, dtype) -> object:
    """A zeroed kernel array of numba's own (scratch of the host-callable kernel functions)."""
    return cuda.to_device(np.zeros(shape, dtype), stream=launch_stream())


_streams: dict[int, object] = {}


def launch_stream():
    """The stream to launch on: torch's current CUDA stream (0, the default stream, under the simulator or
    when torch runs on the legacy default stream or is not loaded with CUDA)."""
    if SIMULATOR:
        return 0
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0
    ptr = torch.cuda.current_stream().cuda_stream
    if not ptr:
        return 0
    stream = _streams.get(ptr)
    if stream is None:
        stream = _streams[ptr] = cuda.external_stream(ptr)
    return stream


class FixedTypes:
    """A kernel launched from one call site whose argument types never change (the GPU step's, on buffers it
    made once). On a GPU it is specialised to the types of its first launch, so that later launches skip numba's
    type dispatch (it builds a numba type for every array argument at every launch: microseconds that add up
    over a dozen launches a step). Arguments of other types would be misread: one per call site."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.fixed = None

    def __getitem__(self, config):
        return lambda *args: self._launch(config, args)

    def _launch(self, config, args) -> None:
        if self.fixed is None:
            self.fixed = self.kernel if SIMULATOR else self.kernel.specialize(*args)
        self.fixed[config](*args)


def fixed_types(kernels: SimpleNamespace) -> SimpleNamespace:
    """The same kernels, each wrapped in its own FixedTypes."""
    return SimpleNamespace(**{name: FixedTypes(k) for name, k in vars(kernels).items()})


def blocks(n: int, threads: int) -> int:
    """Blocks of ``threads`` threads that cover ``n`` elements (at least 1; at most MAX_FLAT_BLOCKS, the
    kernels loop over the rest)."""
    return min(MAX_FLAT_BLOCKS, max(1, (n + threads - 1) // threads))
