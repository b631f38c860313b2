"""Backends of the fused ops: one registry that knows which implementations exist here and picks one honestly.

A backend is a ``Backend`` record: its name, where it can run here (``status()``, with the reason where it
cannot) and how to get the implementation of an op by name. Adding one is one module of ops and one
``register_backend`` call; ``pixelfade backends``, ``pixelfade_fast.backends()`` and ``backend="auto"`` read the
registry. ``auto`` takes, in registration order, the first backend that runs on the tensors' device and allows
``auto`` there: cpp-CUDA, then triton, then reference for CUDA tensors, and cpp-CPU, then reference for CPU
tensors. ``PIXELFADE_BACKEND`` replaces ``auto`` when set. A backend asked for by name that cannot run on the
tensors' device raises an error saying why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from .registry import Registry

ENV_VAR = "PIXELFADE_BACKEND"


@dataclass(frozen=True)
class BackendStatus:
    name: str
    cpu: bool
    cuda: bool
    reason: str  # why a device is unsupported ("" when both are)


@dataclass(frozen=True)
class Backend:
    """An implementation of the fused ops (fade_step_, fade_noise, fade_mask_ids)."""

    name: str
    status: Callable[[], BackendStatus]  # where it runs here, and why not elsewhere
    op: Callable[[str], Callable]  # op name -> its implementation (same signature as pixelfade_fast.reference's)
    description: str
    auto_devices: tuple[str, ...] = ("cpu", "cuda")  # device types on which ``auto`` may choose it


BACKENDS: Registry[Backend] = Registry("backend", reserved=("auto",))
register_backend = BACKENDS.register  # (backend) -> backend; its name must be new and not "auto"


def backend_choices() -> tuple[str, ...]:
    """What a ``backend`` argument or option accepts: "auto" and every registered name."""
    return ("auto", *BACKENDS)


def backends() -> dict[str, BackendStatus]:
    """What each backend can run on here, and why not where it cannot."""
    return {name: backend.status() for name, backend in BACKENDS.items()}


def _runs_on(status: BackendStatus, on_cuda: bool) -> bool:
    return status.cuda if on_cuda else status.cpu


def resolve(backend: str | None, device: torch.device) -> str:
    """The backend to use for tensors on ``device``; raises if a named backend cannot run there."""
    name = backend or "auto"
    if name == "auto":
        name = os.environ.get(ENV_VAR, "auto") or "auto"
    if name not in backend_choices():
        source = f" (from ${ENV_VAR})" if backend in (None, "auto") else ""
        raise ValueError(f"unknown backend {name!r}{source}; choose one of {backend_choices()}")
    device_type = torch.device(device).type
    on_cuda = device_type == "cuda"
    if name == "auto":
        for candidate in BACKENDS.values():
            if device_type in candidate.auto_devices and _runs_on(candidate.status(), on_cuda):
                return candidate.name
        raise RuntimeError(f"no backend can run on device {device}")
    info = BACKENDS[name].status()
    if not _runs_on(info, on_cuda):
        raise RuntimeError(f"backend {name!r} cannot run on {device_type} tensors here: {info.reason}. "
                           f"pixelfade_fast.backends() lists what is available; backend='auto' picks one.")
    return name


def _cpp_status() -> BackendStatus:
    from . import _cpp

    if not _cpp.available():
        return BackendStatus("cpp", False, False, _cpp.unavailable_reason())
    cuda = _cpp.has_cuda_kernels() and torch.cuda.is_available()
    reason = "" if cuda else ("built without CUDA kernels" if not _cpp.has_cuda_kernels() else "no CUDA device")
    return BackendStatus("cpp", True, cuda, reason)


def _cpp_op(op: str) -> Callable:
    from . import _cpp  # noqa: F401  (loads pixelfade_fast._C and its fake kernels)

    return getattr(torch.ops.pixelfade, op)


def _triton_status() -> BackendStatus:
    from . import kernels  # the top-level kernels/ folder, installed as pixelfade_fast.kernels

    return BackendStatus("triton", kernels.available("cpu"), kernels.available("cuda"),
                         "; ".join(r for r in (kernels.unavailable_reason("cpu"), kernels.unavailable_reason("cuda")) if r))


def _triton_op(op: str) -> Callable:
    from . import kernels

    return getattr(kernels, op)


def _reference_status() -> BackendStatus:
    cuda = torch.cuda.is_available()
    return BackendStatus("reference", True, cuda, "" if cuda else "no CUDA device")


def _reference_op(op: str) -> Callable:
    from . import reference

    return getattr(reference, op)


# Registration order is auto's order of preference.
register_backend(Backend("cpp", _cpp_status, _cpp_op, "C++/CUDA extension (pixelfade_fast._C)"))
register_backend(Backend("triton", _triton_status, _triton_op, "Triton kernels", auto_devices=("cuda",)))
register_backend(Backend("reference", _reference_status, _reference_op, "pure PyTorch, the specification"))
