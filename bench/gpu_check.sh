#!/usr/bin/env bash
# The whole GPU check in one device call (see ../.library/device): build the extension in place with this
# machine's torch, the GPU tests, the kernel benchmark, compute-sanitizer, the end-to-end and gallery benchmarks.
# At most 8 files land under $OUT (the device returns no more): gpu_check.log (every step's output), ops.csv,
# e2e.csv, e2e.png, gallery.csv, summary.txt. Every step is cut to fit BUDGET seconds in all (default 470, about
# 8 minutes), CSVs are written as rows are measured (a run cut short keeps what it measured), and the table
# against the targets is printed last.
#   OUT=/tmp/out bash bench/gpu_check.sh              # everything
#   PHASES="tests sanitize" bash bench/gpu_check.sh     # some of: tests ops sanitize e2e gallery
#   DRY_RUN=1 bash bench/gpu_check.sh                   # CPU, tiny sizes: checks the script itself (CI runs it)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/latest}
BUDGET=${BUDGET:-470}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
LOG="$OUT/gpu_check.log"
: > "$LOG"
export PYTHONUNBUFFERED=1
unset PIXELFADE_CUDA_STEP PIXELFADE_BACKEND
PHASES=${PHASES:-tests ops sanitize e2e gallery}
status=0
wanted() { [[ " $PHASES " == *" $1 "* ]]; }
step() { echo; echo "=== $1 ($(date +%T), ${SECONDS}s of ${BUDGET}s)"; } >> "$LOG"
# Seconds for the next step: at most $1, and never past the budget (minus what the summary needs).
allow() { local left=$((BUDGET - SECONDS - 15)); echo $(( left < $1 ? (left > 1 ? left : 1) : $1 )); }
run() { "$@" >> "$LOG" 2>&1; }

if [ -n "${DRY_RUN:-}" ]; then
  DEVICE=cpu; export TRITON_INTERPRET=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
  OPS_ARGS="--device cpu --batches 2 --shape 3 16 8 --reps 2 --warmup 1 --no-compile"
  E2E_ARGS="--device cpu --cases tiny_cnn --batches 2 --input-size 64 32 --timed-steps 1 --rounds 1 --gallery-images 4 --gallery-steps 2"
  GALLERY_ARGS="--device cpu --images 4 --batch-size 2 --steps 10"
  PYTEST_FILTER="-m gpu --co"   # the GPU tests are only collected on a CPU
else
  DEVICE=cuda; unset TRITON_INTERPRET
  OPS_ARGS="--device cuda --batches 256 512 16 64 128 1 --reps 30 --flags co co_pro"
  E2E_ARGS="--device cuda --cases agw_r50_nl osnet_x0_25 osnet_x1_0 --batches 64 256 --timed-steps 8 --gallery-images 0"
  GALLERY_ARGS="--device cuda --images 512 --batch-size 128"
  PYTEST_FILTER="-m gpu"
fi

step "environment"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
} >> "$LOG" 2>&1

if [ -z "${DRY_RUN:-}" ]; then
  step "build (sm_90, in place)"
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PIXELFADE_FORCE_CUDA_BUILD=1 MAX_JOBS=${MAX_JOBS:-16}
  if ! timeout "$(allow 240)" $PY -m pip install --no-build-isolation --no-deps --no-index -e . >> "$LOG" 2>&1; then
    tail -40 "$LOG"; echo "BUILD FAILED"; exit 1
  fi
fi
run $PY -c 'import pixelfade_fast as pf, pixelfade_fast._cpp as c; print(c.build_info()); print(pf.backends())'

if wanted tests; then
  step "GPU tests"
  timeout "$(allow 150)" $PY -m pytest $PYTEST_FILTER -q -p no:cacheprovider --durations=5 tests >> "$LOG" 2>&1 || status=1
fi

if wanted ops; then
  step "kernel benchmark"
  # CO-only steps (most steps; the bandwidth target) before CO+PRO, the batch sizes the targets name first.
  timeout "$(allow 100)" $PY bench/bench_ops.py $OPS_ARGS --out "$OUT/ops.csv" >> "$LOG" 2>&1 || status=1
fi

if wanted sanitize; then
  step "compute-sanitizer (memcheck) on the CUDA ops"
  if [ -z "${DRY_RUN:-}" ] && command -v compute-sanitizer >/dev/null; then
    timeout "$(allow 60)" compute-sanitizer --tool memcheck --error-exitcode 9 $PY bench/sanitize_ops.py >> "$LOG" 2>&1 \
      || { echo "compute-sanitizer failed" >> "$LOG"; status=1; }
  else
    echo "compute-sanitizer: not run (no GPU / not installed)" >> "$LOG"
  fi
fi

if wanted e2e; then
  step "end-to-end benchmark"
  left=$(allow 200)
  timeout "$left" $PY bench/bench_e2e.py $E2E_ARGS --budget $((left - 30)) --out "$OUT/e2e.csv" \
    --plot "$OUT/e2e.png" >> "$LOG" 2>&1 || status=1
fi

if wanted gallery; then
  step "gallery benchmark"
  timeout "$(allow 60)" $PY bench/bench_gallery.py $GALLERY_ARGS --out "$OUT/gallery.csv" >> "$LOG" 2>&1 || status=1
fi

step "summary"
$PY bench/summarize.py "$OUT" > "$OUT/summary.txt" 2>&1 || status=1
cat "$LOG" | grep -E "^(=== |FAILED|ERROR|BUILD|[0-9]+ (passed|failed))" | tail -20
echo "status $status"
cat "$OUT/summary.txt"
exit $status
