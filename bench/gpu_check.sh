#!/usr/bin/env bash
# The whole GPU check in one call (see ../.library/device): build the extension in place with this machine's torch,
# run the GPU tests, compute-sanitizer on the CUDA ops, the kernel and end-to-end benchmarks; CSVs and logs go
# under $OUT (default bench/results/latest); a short table is printed last.
#   OUT=/tmp/out bash bench/gpu_check.sh            # everything
#   QUICK=1 bash bench/gpu_check.sh                   # fewer batch sizes and repetitions
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/latest}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
status=0
step() { echo; echo "=== $1 ($(date +%T))"; }

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)' | tee -a "$OUT/gpu.txt"

step "build (sm_90, in place)"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PIXELFADE_FORCE_CUDA_BUILD=1 MAX_JOBS=${MAX_JOBS:-16}
if ! $PY -m pip install --no-build-isolation --no-deps --no-index -e . > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
$PY -c 'import pixelfade_fast as pf, pixelfade_fast._cpp as c; print(c.build_info()); print(pf.backends())' | tee -a "$OUT/gpu.txt"

step "GPU tests"
timeout 300 $PY -m pytest -m gpu -q -x -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "compute-sanitizer (memcheck) on the CUDA ops"
if command -v compute-sanitizer >/dev/null; then
  timeout 180 compute-sanitizer --tool memcheck --error-exitcode 9 $PY bench/sanitize_ops.py > "$OUT/sanitizer.log" 2>&1
  rc=$?; tail -5 "$OUT/sanitizer.log"; [ $rc -eq 0 ] || { echo "compute-sanitizer exit $rc"; status=1; }
else
  echo "compute-sanitizer not found: skipped"
fi

step "kernel benchmark"
if [ -n "${QUICK:-}" ]; then batches="16 256"; reps=10; else batches="1 16 64 128 256 512"; reps=30; fi
timeout 300 $PY bench/bench_ops.py --device cuda --batches $batches --reps $reps --out "$OUT/ops.csv" > "$OUT/bench_ops.log" 2>&1 || status=1
tail -3 "$OUT/bench_ops.log"

step "end-to-end benchmark"
if [ -f bench/bench_protect.py ]; then
  timeout 240 $PY bench/bench_protect.py --device cuda --out "$OUT/protect.csv" > "$OUT/bench_protect.log" 2>&1 || status=1
  tail -3 "$OUT/bench_protect.log"
fi

step "summary"
$PY bench/summarize.py "$OUT" || status=1
exit $status
