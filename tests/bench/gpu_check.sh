#!/usr/bin/env bash
# The GPU check of issue 8 (GPU training with Numba-CUDA kernels): one call on a GPU machine, within 8 minutes
# (288 s on an H200, 2026-11-27, plus about 30 s to start the machine). It runs the GPU tests, then one epoch of the Diginetica preset and of layers=100,batch_size=32 on
# diginetica-srgnn with (i) plain PyTorch on the GPU and (ii) the Numba-CUDA path, printing mini-batches/s,
# events/s and Recall@20 after each epoch (tests/bench/bench_gpu_train.py). Targets: >= 1,500 mini-batches/s for
# (ii) at layers=100, batch 32; the same Recall@20 for (i) and (ii) up to noise. (ii) runs twice: with its
# full-batch steps replayed as a CUDA graph (the default) and launching its kernels one by one.
#
# The device tool sends the repository working tree only (not ../shared), and it sends the checkout the session
# was started in: run both steps from that checkout.
#
# 1. Here, once:    tests/bench/gpu_check.sh prepare
#    copies train_sessions.txt and test_sessions.txt of ../shared/data/diginetica-srgnn (or
#    $UPNEXT_SHARED_DATA/diginetica-srgnn) into .gpu-data/ (gitignored, 5.4 MB; never commit it: the dataset's
#    licence forbids republishing).
# 2. There:         device tool `run`, command "bash tests/bench/gpu_check.sh run", carry [".gpu-data"],
#                   timeout_s 560. Everything it prints also lands in $OUT (gpu_check.log).
#
# numba-cuda there: the GPU machine's python3 has torch (a CUDA 13 build, torch.version.cuda says which), numba and
# numba-cuda, used as they are; the check prints their versions and stops early if numba-cuda cannot use the GPU.
# If it cannot (or to test the pinned version), carry numba-cuda 0.30.4 as a wheel; it needs numba >= 0.60 and
# the CUDA 12 or 13 Python packages of torch's CUDA major version (cuda-bindings, cuda-core, cuda-pathfinder, the
# nvrtc/nvvm libraries: numba-cuda[cu12] or [cu13]), which that image has for CUDA 13:
#    echo /.whl/ >> .git/info/exclude     # (.gitignore lists it already)
#    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
#      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl numba-cuda==0.30.4
#    (1.9 MB; then carry [".gpu-data", ".whl"]: if the machine's own numba-cuda cannot run the
#    kernels, the run installs .whl/*.whl into /tmp/site and tries again with it.
#    Do not add numba 0.68.1 + llvmlite 0.50.0 wheels: llvmlite alone is 57 MB, over the 64 MB a call carries.)
# Wheels are never committed.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DATA=.gpu-data/diginetica-srgnn

versions() {     # prints the versions; fails when the Numba-CUDA path cannot use the GPU
    $PY - <<'PY'
import importlib.metadata as md, numba, numpy, torch
from numba import cuda
print(f"torch {torch.__version__} CUDA {torch.version.cuda} GPU {torch.cuda.is_available()}; "
      f"numpy {numpy.__version__}; numba {numba.__version__}; numba-cuda {md.version('numba-cuda')} ({cuda.__file__})")
from backend.gru4rec.device import cuda_unavailable
why = cuda_unavailable("fast")
if not why:                     # compile and launch one kernel on a torch tensor: NVVM, driver and interop at once
    try:
        @cuda.jit
        def probe(a):
            i = cuda.grid(1)
            if i < a.size:
                a[i] = i
        t = torch.zeros(64, device="cuda")
        probe[1, 64](cuda.as_cuda_array(t))
        cuda.synchronize()
        assert t[5].item() == 5.0, t[:8]
    except Exception as e:      # noqa: BLE001
        why = f"a probe kernel failed: {type(e).__name__}: {e}"
print("GPU path:", why or "ready")
raise SystemExit(1 if why else 0)
PY
}

check() {
    if [ ! -f "$DATA/train_sessions.txt" ]; then
        echo "$DATA missing: run 'tests/bench/gpu_check.sh prepare' where the data is, and carry .gpu-data"
        return 2
    fi
    PY="${PYTHON:-python3}"
    export PYTHONPATH="$REPO" PYTHONUNBUFFERED=1
    start=$(date +%s)
    echo "== versions"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    if ! versions; then
        # numba older than the machine's numpy (numba 0.68.0 with numpy 2.5 was seen there) looks up numpy
        # functions that numpy 2.5 removed, such as np.row_stack: put them back, under their new names, in every
        # Python process of this check
        mkdir -p /tmp/upnext-shim
        cat > /tmp/upnext-shim/sitecustomize.py <<'SHIM'
import numpy as _np
for _old, _new in (("row_stack", "vstack"), ("trapz", "trapezoid"), ("in1d", "isin")):
    if not hasattr(_np, _old) and hasattr(_np, _new):
        setattr(_np, _old, getattr(_np, _new))
SHIM
        export PYTHONPATH="$REPO:/tmp/upnext-shim"
        echo "== with numpy's removed names put back"
    fi
    if ! versions; then
        # the machine's own numba-cuda cannot run our kernels: try the pinned one, if it was carried
        compgen -G ".whl/*.whl" > /dev/null || return 2
        echo "== trying the carried wheels: $(ls .whl)"
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            || return 2
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
        versions || return 2
    fi
    echo "== 1. tests on the GPU ($(($(date +%s) - start)) s)"
    # -W default: a numba warning peculiar to that machine is printed instead of failing the one run we get
    timeout 150 $PY -m pytest -q -p no:cacheprovider --confcutdir=tests/gpu -W default --durations=8 \
        tests/gpu tests/kernels/test_training_cuda.py tests/gru4rec/test_train_cuda.py \
        tests/kernels/test_features_cuda.py tests/gru4rec/test_item_features_cuda.py
    echo "pytest exit status $?"
    [ "${1:-}" = tests ] && return 0
    echo "== 2. one epoch each ($(($(date +%s) - start)) s)"
    UPNEXT_SHARED_DATA="$REPO/.gpu-data" timeout 330 $PY tests/bench/bench_gpu_train.py
    echo "bench exit status $?"
    echo "== done in $(($(date +%s) - start)) s"
}

case "${1:-}" in
prepare)
    src="${UPNEXT_SHARED_DATA:-$REPO/../shared/data}/diginetica-srgnn"
    [ -f "$src/train_sessions.txt" ] || { echo "no dataset at $src (see ../shared/data/README.md)"; exit 2; }
    mkdir -p "$DATA"
    cp "$src/train_sessions.txt" "$src/test_sessions.txt" "$DATA/"
    git check-ignore -q "$DATA/train_sessions.txt" || { echo "$DATA is not ignored by git: not going on"; exit 2; }
    du -sh .gpu-data
    echo "now: device run, command 'bash tests/bench/gpu_check.sh run', carry ['.gpu-data'], timeout_s 560"
    ;;
run|tests)      # tests: the GPU tests only (about 30 s)
    OUT="${OUT:-/tmp/gpu_check}"; mkdir -p "$OUT"
    check "$1" 2>&1 | tee "$OUT/gpu_check.log"
    exit "${PIPESTATUS[0]}"
    ;;
*)
    echo "usage: tests/bench/gpu_check.sh prepare|run|tests   (see the comment at the top)"; exit 2 ;;
esac
