"""The Numba-CUDA training kernels compile for a real GPU (PTX for Hopper, sm_90) with the argument types the GPU
step passes, and the float32 kernels compute in float32: a float64 literal or a mixed operation would double
their cost on a GPU and cannot be seen under the simulator. Needs numba-cuda with its CUDA compiler (NVVM), which
`numba-cuda[cu12]` / `[cu13]` bring: no GPU needed, so it also runs on a CPU machine that has them."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from numba import config, types

if config.ENABLE_CUDASIM:
    pytest.skip("compiles PTX: run without NUMBA_ENABLE_CUDASIM", allow_module_level=True)

from numba import cuda  # noqa: E402

from backend.kernels import cuda_loss  # noqa: E402
from backend.kernels import training_cuda as kc  # noqa: E402

f32, f64, i32, i64 = types.float32, types.float64, types.int32, types.int64
V32, V64, VI32, VI64 = f32[::1], f64[::1], i32[::1], i64[::1]
M32 = f32[:, ::1]

# (kernel, argument types as the GPU step passes them, float32 only?)
KERNELS = {
    "xe_rows": (cuda_loss.xe_rows, (V32, V32, i64, V32, V32, f32, f32, f32, V32), True),
    "bprmax_rows": (cuda_loss.bprmax_rows, (V32, V32, i64, V32, f32, f32, f32, V32), True),
    "column_sums": (cuda_loss.column_sums, (V32, i64, i64, V32, V32, V64), False),   # the loss sum is float64
    "claim_rows": (kc._claim_rows, (VI64, i64, VI32), True),
    "add_duplicates": (kc._add_duplicates, (VI64, M32, VI32), True),
    "apply_rows": (kc._apply_rows, (M32, M32, M32, VI64, M32, f32, f32, VI32), True),
    "adagrad_flat": (kc._adagrad_flat, (V32, V32, V32, V32, f32, f32), True),
    "draw_samples": (kc._draw_samples, (V64, V64, VI32), False),                      # cumulative weights
}


@pytest.fixture(scope="module")
def compile_ptx():
    """``cuda.compile_ptx`` for sm_90, or a skip when numba-cuda has no CUDA compiler here. Device functions are
    compiled for the current GPU's compute capability: without a GPU, the test says sm_90."""
    with pytest.MonkeyPatch.context() as patch:
        if not cuda.is_available():
            from numba.cuda import dispatcher

            patch.setattr(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0)))

        def compile_ptx(kernel, argtypes) -> str:
            return cuda.compile_ptx(kernel.py_func, argtypes, cc=(9, 0))[0]

        try:
            compile_ptx(kc._claim_rows, KERNELS["claim_rows"][1])
        except Exception as exc:               # noqa: BLE001 - whichever piece of the CUDA toolchain is missing
            pytest.skip(f"numba-cuda cannot compile here (it needs its CUDA compiler: numba-cuda[cu12] or "
                        f"[cu13]): {str(exc).splitlines()[0][:200]}")
        yield compile_ptx


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_compiles_for_the_gpu(compile_ptx, name):
    kernel, argtypes, float32_only = KERNELS[name]
    ptx = compile_ptx(kernel, argtypes)
    assert ".entry" in ptx
    if float32_only:
        f64_lines = [line.strip() for line in ptx.splitlines() if re.search(r"\.f64\b", line)]
        assert not f64_lines, f"{name} computes in float64: {f64_lines[:5]}"
