"""GRU4Rec as its authors define it (../shared/docs/gru4rec-spec.md), trained fast on a CPU.

Reading order, which is also the order of the algorithm:

- ``params``     hyperparameters with the names GRU4Rec users know, parameter strings, the published presets
- ``data``       readers: the GRU4Rec TSV layout, one session per line; aligning test data to training items
- ``batches``    session-parallel mini-batches (per-slot resets, a batch that shrinks at the end)
- ``model``      the weights (artifact layout of backend/artifact.py), Glorot init, numpy forward, artifact io
- ``sampler``    the pre-drawn store of popularity-sampled negatives
- ``ops_reference`` / ``ops_cpu``  the step's hot parts as numpy references and Numba CPU twins (same names):
  sampled loss + gradient (XE-logQ, BPR-max), row-wise Adagrad-momentum, popularity sampling, GRU stages
- ``reference``  one training step written plainly with torch autograd: the definition the fast step must match
- ``fast``       the same step fused by hand (1-step BPTT), preallocated, sparse row updates
- ``train``      the training loop; ``threads`` picks its BLAS threads by measuring
- ``metrics`` / ``evaluate``  the evaluation protocol (full ranking, conservative ties), without torch

Nothing here imports torch except ``reference``.
"""
