"""Which device trains: ``cpu``, ``cuda`` (refused with the reason when it cannot work) or ``auto``.

The GPU path needs torch with CUDA (for the dense GRU parts) and numba-cuda that can use the same GPU (for the
kernels); the plain torch reference step (``impl="reference"``) needs torch only. Under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, tests) an explicit ``cuda`` runs the fast path on the CPU with simulated kernels;
``auto`` never picks the simulator.
"""
from __future__ import annotations

import logging

from numba import config

from backend.errors import UpnextError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str, impl: str = "fast", *, named: str = "--device ") -> str:
    """"cpu" or "cuda" for ``requested`` (one of DEVICES); UpnextError when "cuda" cannot work here. ``named``:
    how the person chose it, for the message ("--device ", or "UPNEXT_TRAIN_DEVICE=")."""
    if requested not in DEVICES:
        raise UpnextError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if requested == "auto":
        why = cuda_unavailable(impl, allow_simulator=False)
        if why:
            log.info("training on the CPU", extra={"reason": why})
            return "cpu"
        return "cuda"
    why = cuda_unavailable(impl, allow_simulator=True)
    if why:
        raise UpnextError(f"{named}cuda: {why}; use {named}cpu (or auto, which falls back to the CPU)")
    return "cuda"


def cuda_unavailable(impl: str = "fast", *, allow_simulator: bool = True) -> str | None:
    """Why GPU training cannot run here, or None when it can."""
    try:
        import torch  # lazy: torch only when a GPU is asked for, not at the CLI's start-up
    except ImportError:
        return "torch is not installed (GPU training needs it: pip install 'upnext[train]' and a CUDA extra)"

    if impl == "fast" and allow_simulator and _simulator():
        return None
    if not torch.cuda.is_available():
        build = torch.version.cuda
        return (f"torch {torch.__version__} finds no CUDA GPU"
                + (f" (built for CUDA {build})" if build else " (it is a CPU-only build)"))
    if impl != "fast":
        return None
    if _simulator():
        return "NUMBA_ENABLE_CUDASIM=1 is set: numba simulates CUDA instead of using the GPU"
    try:
        from backend.kernels.cuda_interop import gpu_available  # lazy: numba-cuda is optional
    except ImportError:
        return ("numba-cuda is not installed: pip install 'numba-cuda[cu12]==0.30.4' or '[cu13]', the CUDA major "
                f"version of torch's build ({torch.version.cuda})")
    if not gpu_available():
        return (f"numba-cuda cannot use the GPU: its CUDA packages must match torch's CUDA {torch.version.cuda} "
                "(numba-cuda[cu12] or [cu13]) and the driver")
    return None


def _simulator() -> bool:
    return bool(config.ENABLE_CUDASIM)
