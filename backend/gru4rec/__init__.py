"""GRU4Rec as its authors define it (../shared/docs/gru4rec-spec.md), trained fast on a CPU or a GPU.

Reading order, which is also the order of the algorithm:

- ``params``     hyperparameters with the names GRU4Rec users know, parameter strings, the published presets
- ``data``       readers: the GRU4Rec TSV layout, one session per line; aligning test data to training items
- ``batches``    session-parallel mini-batches (per-slot resets, a batch that shrinks at the end)
- ``weights``    the weights (artifact layout of backend/artifact.py), Glorot init, numpy forward, artifact io
- ``optimizer``  Adagrad-momentum state (an accumulator and a velocity per weight element)
- ``sampler``    the pre-drawn store of popularity-sampled negatives
- ``backend.kernels.training_reference`` / ``training_cpu`` / ``training_cuda``  the step's hot parts as numpy
  references, Numba CPU twins and Numba-CUDA twins (same names): sampled loss + gradient (XE-logQ, BPR-max), row-wise
  Adagrad-momentum, popularity sampling (and, CPU only, the GRU stages)
- ``reference_step``  one training step written plainly with torch autograd: the definition the fast step must
  match
- ``fast``       the same step fused by hand (1-step BPTT), preallocated, sparse row updates
- ``loop``       the training loop both devices run (plan, epochs, steps, progress, dropout masks, the result)
- ``trainer``    ``train()``, the entry point, and the loop's steps on the host; ``threads`` picks their BLAS
  threads by measuring
- ``device``     cpu, cuda or auto; ``cuda_step`` / ``cuda_train`` the step and the loop's steps on a GPU (torch
  for the dense GRU parts, the Numba-CUDA kernels for the hot parts, every array on the device); ``cuda_graph``
  replays a full-batch step as a CUDA graph
- ``ranking_metrics`` / ``evaluation``  the evaluation protocol (full ranking, conservative ties), without torch

``loop`` knows neither device's steps; ``cuda_train`` imports ``loop``, not ``trainer``, and ``trainer`` imports
``cuda_train`` only when asked to train on a GPU. Nothing here imports torch except ``reference_step`` and the
GPU modules (``device``, once asked about a GPU, ``cuda_step``, ``cuda_graph``, ``cuda_train``).
"""
