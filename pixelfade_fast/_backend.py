"""Backend selection: one place that knows which implementations exist here and picks one honestly.

``auto`` tries cpp-CUDA, then triton, then reference for CUDA tensors, and cpp-CPU, then reference for CPU
tensors. ``PIXELFADE_BACKEND`` replaces ``auto`` when set. A backend asked for by name that cannot run on the
tensors' device raises an error saying why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

BACKEND_NAMES = ("reference", "triton", "cpp")
ENV_VAR = "PIXELFADE_BACKEND"


@dataclass(frozen=True)
class BackendStatus:
    name: str
    cpu: bool
    cuda: bool
    reason: str  # why a device is unsupported ("" when both are)


def _cpp_status() -> BackendStatus:
    from . import _cpp

    if not _cpp.available():
        return BackendStatus("cpp", False, False, _cpp.unavailable_reason())
    cuda = _cpp.has_cuda_kernels() and torch.cuda.is_available()
    reason = "" if cuda else ("built without CUDA kernels" if not _cpp.has_cuda_kernels() else "no CUDA device")
    return BackendStatus("cpp", True, cuda, reason)


def _triton_status() -> BackendStatus:
    from . import kernels  # the top-level kernels/ folder, installed as pixelfade_fast.kernels

    return BackendStatus("triton", kernels.available("cpu"), kernels.available("cuda"),
                         "; ".join(r for r in (kernels.unavailable_reason("cpu"), kernels.unavailable_reason("cuda")) if r))


def _reference_status() -> BackendStatus:
    cuda = torch.cuda.is_available()
    return BackendStatus("reference", True, cuda, "" if cuda else "no CUDA device")


_STATUS = {"reference": _reference_status, "triton": _triton_status, "cpp": _cpp_status}


def backends() -> dict[str, BackendStatus]:
    """What each backend can run on here, and why not where it cannot."""
    return {name: status() for name, status in _STATUS.items()}


def resolve(backend: str | None, device: torch.device) -> str:
    """The backend to use for tensors on ``device``; raises if a named backend cannot run there."""
    name = backend or "auto"
    if name == "auto":
        name = os.environ.get(ENV_VAR, "auto") or "auto"
    if name not in BACKEND_NAMES + ("auto",):
        source = f" (from ${ENV_VAR})" if backend in (None, "auto") else ""
        raise ValueError(f"unknown backend {name!r}{source}; choose one of {('auto',) + BACKEND_NAMES}")
    on_cuda = torch.device(device).type == "cuda"
    if name == "auto":
        order = ("cpp", "triton", "reference") if on_cuda else ("cpp", "reference")
        for candidate in order:
            info = _STATUS[candidate]()
            if info.cuda if on_cuda else info.cpu:
                return candidate
        raise RuntimeError(f"no backend can run on device {device}")
    info = _STATUS[name]()
    if not (info.cuda if on_cuda else info.cpu):
        raise RuntimeError(f"backend {name!r} cannot run on {torch.device(device).type} tensors here: {info.reason}. "
                           f"pixelfade_fast.backends() lists what is available; backend='auto' picks one.")
    return name
