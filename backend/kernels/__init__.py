"""Serving kernels: one GRU step, fused scoring with top-k selection, "up next" rollouts.

``reference`` (numpy) defines the results; ``cpu`` (Numba, compiled on first call and cached on disk) is what
serving runs. Both modules have the same functions with the same arguments (see reference.py for the
conventions); tests compare them. ``implementation(name)`` picks one by name.

Training kernels (the hot parts of a GRU4Rec training step) follow the same pattern: ``training_reference``
(numpy), ``training_cpu`` (Numba CPU) and ``cuda`` (Numba-CUDA; ``cuda_loss``, ``cuda_interop``) have the same
functions with the same arguments.
"""
from __future__ import annotations

import importlib
from types import ModuleType

IMPLEMENTATIONS = ("cpu", "reference")


def implementation(name: str = "cpu") -> ModuleType:
    """The kernel module called ``name`` (one of IMPLEMENTATIONS); imported on demand (Numba loads slowly)."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown kernel implementation {name!r}: one of {', '.join(IMPLEMENTATIONS)}")
    return importlib.import_module(f"backend.kernels.{name}")
