"""The op backends as test cases: one interface over the reference, the C++ ops and the Triton kernels, and the
pytest parameters for every (backend, device, variant) with a skip only where that combination cannot run here.

Triton runs on CPU tensors under its interpreter (tests/conftest.py sets TRITON_INTERPRET=1 before triton loads).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import pytest
import torch

import pixelfade_fast as pf
from pixelfade_fast import reference as R

CUDA_STEPS = ("two_pass", "cluster")  # the C++ CUDA fade_step_ variants, chosen by PIXELFADE_CUDA_STEP


@dataclass(frozen=True)
class Backend:
    """One backend on one device; ``variant`` is the C++ CUDA step (None: the default), ``tiles`` the Triton
    launch shapes ("default" or "small", so that tiny images span many programs, partials and tails)."""
    name: str
    device: str
    variant: str | None = None
    tiles: str | None = None

    @property
    def id(self) -> str:
        return "-".join(part for part in (self.name, self.device, self.variant, self.tiles and f"{self.tiles}_tiles")
                        if part)

    @property
    def ops(self):
        """The module or op namespace with fade_step_, fade_noise, fade_mask_ids, philox_words."""
        if self.name == "cpp":
            return torch.ops.pixelfade
        if self.name == "triton":
            return importlib.import_module("pixelfade_fast.kernels")
        return R

    @property
    def library(self):
        """The torch.library namespace of its registered ops (for opcheck)."""
        return {"cpp": torch.ops.pixelfade, "triton": torch.ops.pixelfade_triton}[self.name]

    def philox_words(self, key, index, high=None):
        if self.name == "reference":
            return torch.stack(R.philox4x32(key, index, high), dim=-1)
        return self.ops.philox_words(key, index) if high is None else self.ops.philox_words(key, index, high)

    def fade_noise(self, keys, shape):
        return self.ops.fade_noise(keys, list(shape))

    def fade_mask_ids(self, keys, shape, num_masks, pixel_masks=False):
        return self.ops.fade_mask_ids(keys, list(shape), num_masks, pixel_masks)

    def fade_step_(self, *args):
        self.ops.fade_step_(*args)

    def activate(self, monkeypatch) -> Backend:
        """Select this case's CUDA step variant or Triton tiles for one test (undone by monkeypatch)."""
        if self.variant is not None:
            if self.variant == "cluster" and torch.cuda.get_device_capability()[0] < 9:
                pytest.skip("thread-block clusters need compute capability 9.0 or later")
            monkeypatch.setenv("PIXELFADE_CUDA_STEP", self.variant)
        if self.tiles == "small":
            step = importlib.import_module("pixelfade_fast.kernels.fade_step")
            launch = importlib.import_module("pixelfade_fast.kernels.launch")
            monkeypatch.setattr(step, "TILES", step.StepTiles(block=16, num_warps=1, norm_block=8, norm_warps=1,
                                                              max_partials=4))
            monkeypatch.setattr(importlib.import_module("pixelfade_fast.kernels.fade_noise"), "TILES",
                                launch.Tiles(block=32, num_warps=1))
            monkeypatch.setattr(importlib.import_module("pixelfade_fast.kernels.fade_mask_ids"), "TILES",
                                launch.Tiles(block=16, num_warps=1))
        return self


def _skip_reason(name: str, device: str) -> str:
    status = pf.backends()[name]
    if device == "cuda" and not torch.cuda.is_available():
        return "needs a CUDA device"
    if getattr(status, device):
        return ""
    return status.reason or f"{name} does not run on {device}"


def backend_cases(names=("cpp", "triton"), devices=("cpu", "cuda"), variants=False, tiles=False):
    """pytest params of Backend for each name x device; ``variants``: each C++ CUDA step variant as its own case;
    ``tiles``: each Triton case with default and with small tiles. CUDA cases are marked ``gpu``."""
    cases = []
    for device in devices:
        for name in names:
            kinds = [Backend(name, device)]
            if variants and name == "cpp" and device == "cuda":
                kinds = [Backend(name, device, variant=v) for v in CUDA_STEPS]
            if tiles and name == "triton":
                kinds = [Backend(name, device, tiles=t) for t in ("default", "small")]
            marks = [pytest.mark.gpu] if device == "cuda" else []
            reason = _skip_reason(name, device)
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
            cases += [pytest.param(kind, id=kind.id, marks=marks) for kind in kinds]
    return cases
