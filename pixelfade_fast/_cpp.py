"""The C++/CUDA ops of the extension ``pixelfade_fast._C``, called as ``torch.ops.pixelfade.*``.

Importing this module loads ``_C`` if it was built (its C++ side registers the schemas and the CPU/CUDA kernels)
and registers the fake (meta) kernels that let ``torch.compile`` and ``torch.library.opcheck`` trace the ops.
Importing never fails: ``available()`` and ``unavailable_reason()`` say whether the ops can be used.
"""
from __future__ import annotations

import torch

try:
    from . import _C
except (ImportError, OSError) as error:  # not built, or built against another torch
    _C = None
    _IMPORT_ERROR = (f"pixelfade_fast._C could not be loaded ({error}); build it with "
                     "`pip install --no-build-isolation -e .` using the torch you run with")
else:
    _IMPORT_ERROR = ""


def available() -> bool:
    """True when the extension is loaded and torch.ops.pixelfade.* have CPU kernels."""
    return _C is not None


def unavailable_reason() -> str:
    """Why the extension cannot be used ("" when it can)."""
    return _IMPORT_ERROR


def build_info() -> dict:
    """What the extension was built with: cuda (bool), cuda_archs (['sm_90', ...]), cuda_version (str or None),
    openmp (bool), torch_version (the torch headers it was compiled against)."""
    if _C is None:
        raise RuntimeError(unavailable_reason())
    return _C.build_info()


def has_cuda_kernels() -> bool:
    """True when the loaded extension registered CUDA kernels for the pixelfade ops."""
    return _C is not None and torch._C._dispatch_has_kernel_for_dispatch_key("pixelfade::fade_step_", "CUDA")


def _register_fake_kernels() -> None:
    """Output metadata of each op without computing it (used by torch.compile, opcheck and meta tensors)."""

    @torch.library.register_fake("pixelfade::fade_step_")
    def _fade_step_fake(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm,
                        pixel_masks, mask_ids=None):
        torch._check(mom.shape == xp.shape and grad.shape == xp.shape,
                     lambda: f"pixelfade::fade_step_: mom and grad must have xp's shape {tuple(xp.shape)}")
        return None

    @torch.library.register_fake("pixelfade::fade_noise")
    def _fade_noise_fake(keys, shape):
        return keys.new_empty((keys.shape[0], *shape), dtype=torch.float32)

    @torch.library.register_fake("pixelfade::fade_mask_ids")
    def _fade_mask_ids_fake(keys, shape, num_masks, pixel_masks):
        return keys.new_empty((keys.shape[0], *shape), dtype=torch.uint8)

    @torch.library.register_fake("pixelfade::philox_words")
    def _philox_words_fake(key, index, counter_high=None):
        return key.new_empty((*key.shape, 4), dtype=torch.int64)


if _C is not None:
    _register_fake_kernels()
