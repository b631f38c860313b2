#!/usr/bin/env bash
# Compile-only check of every CUDA source of pixelfade_fast._C (build_flags.json "cuda_sources"), so that a .cu
# that does not compile cannot land even where no GPU and no CUDA build of torch exist. Each file is compiled
# with `nvcc -c` against the installed torch's headers, with the extension's own nvcc flags.
#
# usage: scripts/cuda_compile_check.sh [PYTHON]   (PYTHON: an interpreter with torch; default .venv/bin/python)
# env:   PIXELFADE_CHECK_ARCH_LIST  archs to compile for (default "9.0"; e.g. "8.0;8.6;8.9;9.0" for the full list)
#        CUDA_HOME                  where nvcc lives (else nvcc on PATH, else /usr/local/cuda)
# exit:  0 when every file compiles, or (with a SKIP message) when nvcc is absent; 1 on any compile error.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${1:-}"
if [[ -z "$python" ]]; then
  if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi

nvcc=""
if [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
  nvcc="$CUDA_HOME/bin/nvcc"
elif command -v nvcc >/dev/null 2>&1; then
  nvcc="$(command -v nvcc)"
elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [[ -z "$nvcc" ]]; then
  echo "cuda_compile_check: SKIP: nvcc not found (set CUDA_HOME or put nvcc on PATH); CUDA sources not checked"
  exit 0
fi

# One line per source, then one line of flags: everything comes from build_flags.json and the installed torch.
if ! plan="$("$python" - "${PIXELFADE_CHECK_ARCH_LIST:-9.0}" <<'EOF'
import json, os, shlex, sys
from pathlib import Path

from torch.utils import cpp_extension

build = json.loads(Path("build_flags.json").read_text())
flags = ["-std=c++20", "-c", "--compiler-options", "-fPIC", "-D" + build["cuda_define"]]
flags += cpp_extension.COMMON_NVCC_FLAGS + build["nvcc_flags"]
for include in cpp_extension.include_paths() + build["include_dirs"]:
    flags.append("-I" + include)
# A CPU-only torch wheel ships the c10/cuda headers but not the header CMake generates for CUDA builds.
generated = Path(cpp_extension.include_paths()[0]) / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
if not generated.exists():
    flags.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
for arch in sys.argv[1].replace(",", ";").split(";"):
    number = arch.replace("+PTX", "").replace(".", "")
    flags.append(f"-gencode=arch=compute_{number},code=sm_{number}")
    if arch.endswith("+PTX"):
        flags.append(f"-gencode=arch=compute_{number},code=compute_{number}")
for source in build["cuda_sources"]:
    print(source)
print(shlex.join(flags))
EOF
)"; then
  echo "cuda_compile_check: FAIL: could not read build_flags.json or torch's include paths with $python" >&2
  exit 1
fi

flags="$(tail -n 1 <<<"$plan")"
mapfile -t sources < <(sed '$d' <<<"$plan")
out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT

echo "cuda_compile_check: $("$nvcc" --version | tail -n 1); ${#sources[@]} files; archs ${PIXELFADE_CHECK_ARCH_LIST:-9.0}"
start=$SECONDS
failed=0
for source in "${sources[@]}"; do
  file_start=$SECONDS
  # shellcheck disable=SC2086  # $flags is a shell-quoted list built above
  if eval "\"\$nvcc\" $flags \"\$source\" -o \"\$out_dir/\$(basename \"\$source\").o\""; then
    echo "  ok    $source ($((SECONDS - file_start)) s)"
  else
    echo "  FAIL  $source" >&2
    failed=1
  fi
done
echo "cuda_compile_check: $((SECONDS - start)) s in all"
if [[ $failed -ne 0 ]]; then
  echo "cuda_compile_check: FAIL: a CUDA source does not compile (see the nvcc errors above)" >&2
  exit 1
fi
echo "cuda_compile_check: OK"
