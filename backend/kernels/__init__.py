"""Kernels: the hot loops of serving and training, each as a readable numpy reference and compiled twins with the
same functions, arguments and results (tests compare them).

- Serving: ``serving_reference`` (numpy) defines the results; ``serving_cpu`` (Numba, compiled on first call and
  cached on disk) is what serving runs: one GRU step, fused scoring with top-k selection, "up next" rollouts.
- Training (the hot parts of a GRU4Rec training step): ``training_reference`` (numpy), ``training_cpu`` (Numba
  CPU) and ``training_cuda`` (Numba-CUDA, with ``cuda_loss`` and ``cuda_interop``); ``fastmath`` is a float32
  ``exp`` that LLVM vectorises inside them.
"""
