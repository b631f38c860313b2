"""Build of pixelfade_fast: the Python package, the Triton kernels (as pixelfade_fast.kernels) and the _C extension.

_C always gets the CPU kernels; the CUDA kernels are added when nvcc is found and torch is a CUDA build.
Environment: PIXELFADE_SKIP_CUDA_BUILD=1 leaves CUDA out, PIXELFADE_FORCE_CUDA_BUILD=1 makes a missing nvcc or a
CPU-only torch an error, TORCH_CUDA_ARCH_LIST picks the GPU architectures (default in build_flags.json).
Sources and flags are defined once, in build_flags.json (CMakeLists.txt reads the same file).
"""
import json
import os
import shutil
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
BUILD = json.loads((ROOT / "build_flags.json").read_text())


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "0")
    if value not in ("0", "1"):
        raise SystemExit(f"{name} must be 0 or 1, got {value!r}")
    return value == "1"


def _find_nvcc() -> str | None:
    """nvcc from $CUDA_HOME / $CUDA_PATH, else PATH, else /usr/local/cuda (where torch's build looks too)."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    candidates = [Path(home) / "bin" / "nvcc"] if home else []
    on_path = shutil.which("nvcc")
    candidates += [Path(on_path)] if on_path else []
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    return next((str(c) for c in candidates if c.exists()), None)


def _build_cuda() -> bool:
    """Whether to compile the CUDA kernels, from the environment, nvcc and the installed torch."""
    import torch

    skip, force = _env_flag("PIXELFADE_SKIP_CUDA_BUILD"), _env_flag("PIXELFADE_FORCE_CUDA_BUILD")
    if skip and force:
        raise SystemExit("set at most one of PIXELFADE_SKIP_CUDA_BUILD=1 and PIXELFADE_FORCE_CUDA_BUILD=1")
    if skip:
        print("pixelfade_fast: PIXELFADE_SKIP_CUDA_BUILD=1, building the CPU kernels only")
        return False
    missing = []
    if _find_nvcc() is None:
        missing.append("nvcc was not found (set CUDA_HOME)")
    if torch.version.cuda is None:
        missing.append(f"torch {torch.__version__} is not a CUDA build")
    if not missing:
        return True
    if force:
        raise SystemExit(f"PIXELFADE_FORCE_CUDA_BUILD=1 but {' and '.join(missing)}")
    print(f"pixelfade_fast: {' and '.join(missing)}; building the CPU kernels only")
    return False


def _extensions():
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    sources = BUILD["cpu_sources"] + BUILD["python_sources"]
    include_dirs = [str(ROOT / d) for d in BUILD["include_dirs"]]
    cxx_flags = list(BUILD["cxx_flags"])
    if not _build_cuda():
        return [CppExtension("pixelfade_fast._C", sources, include_dirs=include_dirs,
                             extra_compile_args={"cxx": cxx_flags}, extra_link_args=BUILD["link_flags"])]
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", BUILD["default_cuda_arch_list"])
    print(f"pixelfade_fast: building the CUDA kernels for TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}")
    define = "-D" + BUILD["cuda_define"]
    return [CUDAExtension("pixelfade_fast._C", sources + BUILD["cuda_sources"], include_dirs=include_dirs,
                          extra_compile_args={"cxx": cxx_flags + [define], "nvcc": BUILD["nvcc_flags"] + [define]},
                          extra_link_args=BUILD["link_flags"])]


def _build_ext():
    from torch.utils.cpp_extension import BuildExtension

    return BuildExtension.with_options(use_ninja=True)


setup(
    packages=find_packages(include=["pixelfade_fast", "pixelfade_fast.*"]) + ["pixelfade_fast.kernels"],
    package_dir={"pixelfade_fast.kernels": "kernels"},
    package_data={"pixelfade_fast": ["assets/*.safetensors", "assets/*.md"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": _build_ext()},
)
