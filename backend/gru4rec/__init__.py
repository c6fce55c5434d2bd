"""GRU4Rec as its authors define it (../shared/docs/gru4rec-spec.md), trained fast on a CPU or a GPU.

Reading order, which is also the order of the algorithm:

- ``params``     hyperparameters with the names GRU4Rec users know, parameter strings, the published presets
- ``data``       readers: the GRU4Rec TSV layout, one session per line; aligning test data to training items
- ``batches``    session-parallel mini-batches (per-slot resets, a batch that shrinks at the end)
- ``model``      the weights (artifact layout of backend/artifact.py), Glorot init, numpy forward, artifact io
- ``sampler``    the pre-drawn store of popularity-sampled negatives
- ``backend.kernels.training_reference`` / ``training_cpu`` / ``cuda``  the step's hot parts as numpy references,
  Numba CPU twins and Numba-CUDA twins (same names): sampled loss + gradient (XE-logQ, BPR-max), row-wise
  Adagrad-momentum, popularity sampling (and, CPU only, the GRU stages)
- ``reference``  one training step written plainly with torch autograd: the definition the fast step must match
- ``fast``       the same step fused by hand (1-step BPTT), preallocated, sparse row updates
- ``train``      the training loop; ``threads`` picks its BLAS threads by measuring
- ``device``     cpu, cuda or auto; ``cuda_step`` / ``cuda_train`` the step and loop on a GPU (torch for the dense
  GRU parts, the Numba-CUDA kernels for the hot parts, every array on the device)
- ``metrics`` / ``evaluate``  the evaluation protocol (full ranking, conservative ties), without torch

Nothing here imports torch except ``reference`` and the GPU modules (``device``, ``cuda_step``, ``cuda_train``).
"""
