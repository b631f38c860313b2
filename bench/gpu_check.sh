#!/usr/bin/env bash
# The whole GPU check in one device call (see ../.library/device): build the extension in place with this
# machine's torch, the GPU tests, the kernel benchmark, compute-sanitizer, the end-to-end benchmark; CSVs and
# logs under $OUT (default bench/results/latest), a short table last. Every step is cut to fit BUDGET seconds
# in all (default 560, under the device's 600 s per call), and the CSVs are written as rows are measured, so a
# run cut short still returns what it measured.
#   OUT=/tmp/out bash bench/gpu_check.sh            # everything
#   QUICK=1 bash bench/gpu_check.sh                   # fewer batch sizes and repetitions
#   PHASES="tests sanitize" bash bench/gpu_check.sh   # some of: tests ops sanitize protect (build always runs;
#                                                     # it is incremental, so a second call on a warm machine is quick)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/latest}
BUDGET=${BUDGET:-560}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET PIXELFADE_CUDA_STEP PIXELFADE_BACKEND
PHASES=${PHASES:-tests ops sanitize protect}
status=0
wanted() { [[ " $PHASES " == *" $1 "* ]]; }
step() { echo; echo "=== $1 ($(date +%T), ${SECONDS}s of ${BUDGET}s)"; }
# Seconds for the next step: at most $1, and never past the budget (minus what the summary needs).
allow() { local left=$((BUDGET - SECONDS - 10)); echo $(( left < $1 ? (left > 1 ? left : 1) : $1 )); }

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)' | tee -a "$OUT/gpu.txt"

step "build (sm_90, in place)"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PIXELFADE_FORCE_CUDA_BUILD=1 MAX_JOBS=${MAX_JOBS:-16}
if ! timeout "$(allow 240)" $PY -m pip install --no-build-isolation --no-deps --no-index -e . > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
$PY -c 'import pixelfade_fast as pf, pixelfade_fast._cpp as c; print(c.build_info()); print(pf.backends())' | tee -a "$OUT/gpu.txt"

if wanted tests; then
step "GPU tests"
timeout "$(allow 200)" $PY -m pytest -m gpu -q -p no:cacheprovider --durations=5 tests 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

if wanted ops; then
step "kernel benchmark"
# CO-only steps (most steps; the bandwidth target) before CO+PRO, and the batch sizes the targets name first
# (B >= 256, then 16..128), so a run cut short keeps the important rows.
if [ -n "${QUICK:-}" ]; then batches="256 16"; reps=10; else batches="256 512 16 64 128 1"; reps=30; fi
timeout "$(allow 260)" $PY bench/bench_ops.py --device cuda --batches $batches --reps $reps --flags co co_pro \
  --out "$OUT/ops.csv" > "$OUT/bench_ops.log" 2>&1 || status=1
tail -3 "$OUT/bench_ops.log"
fi

if wanted sanitize; then
step "compute-sanitizer (memcheck) on the CUDA ops"
if command -v compute-sanitizer >/dev/null; then
  timeout "$(allow 90)" compute-sanitizer --tool memcheck --error-exitcode 9 $PY bench/sanitize_ops.py > "$OUT/sanitizer.log" 2>&1
  rc=$?; tail -5 "$OUT/sanitizer.log"; [ $rc -eq 0 ] || { echo "compute-sanitizer exit $rc"; status=1; }
else
  echo "compute-sanitizer not found: skipped"
fi
fi

if wanted protect; then
step "end-to-end benchmark"
timeout "$(allow 120)" $PY bench/bench_protect.py --device cuda --images 256 --batch-size 128 \
  --out "$OUT/protect.csv" > "$OUT/bench_protect.log" 2>&1 || status=1
tail -3 "$OUT/bench_protect.log"
fi

step "summary"
$PY bench/summarize.py "$OUT" || status=1
exit $status
