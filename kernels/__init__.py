"""Triton kernels of pixelfade_fast, registered as the torch.library ops ``pixelfade_triton::*``.

One op, one home: ``fade_step`` (fade_step_), ``fade_noise``, ``fade_mask_ids``, ``philox_words``; the
shared device RNG helpers are in ``philox``. The ops are ``torch.library.triton_op``s, so they trace into
``torch.compile`` graphs and can be captured in CUDA graphs. On CPU tensors they run only under Triton's
interpreter, which is chosen when the kernels are defined: set TRITON_INTERPRET=1 before this package is
first imported. Without triton this package still imports; ``available()`` then says False and
``unavailable_reason()`` says why.

The functions below shadow the submodules of the same name; reach a submodule (e.g. to change its TILES)
through ``importlib.import_module("pixelfade_fast.kernels.fade_noise")``.
"""
from typing import Optional, Sequence

import torch

from .availability import available, set_interpreted, triton_import_error, unavailable_reason

if not triton_import_error():
    from triton.runtime.interpreter import InterpretedFunction

    from . import fade_mask_ids as _fade_mask_ids_module  # noqa: F401  (registers the op)
    from . import fade_noise as _fade_noise_module  # noqa: F401
    from . import fade_step as _fade_step_module
    from . import philox_words as _philox_words_module  # noqa: F401

    set_interpreted(isinstance(_fade_step_module.fade_step_kernel, InterpretedFunction))


def _ops():
    reason = triton_import_error()
    if reason:
        raise RuntimeError(f"the Triton kernels are unavailable: {reason}")
    return torch.ops.pixelfade_triton


def fade_step_(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor, do_pro: torch.Tensor,
               beta: torch.Tensor, mask_idx: torch.Tensor, keys: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
               alpha: float, num_masks: int, norm: str = "l1mean", pixel_masks: bool = False,
               mask_ids: Optional[torch.Tensor] = None) -> None:
    """One PixelFade step in place on ``xp`` and ``mom`` ([B, C, H, W]); see pixelfade_fast.reference.fade_step_."""
    _ops().fade_step_(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, float(alpha), int(num_masks),
                      norm, bool(pixel_masks), mask_ids)


def fade_noise(keys: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """η as float32 [B, *shape] from the noise words ``keys[:, 0:2]`` of int64 [B, 4] keys."""
    return _ops().fade_noise(keys, [int(s) for s in shape])


def fade_mask_ids(keys: torch.Tensor, shape: Sequence[int], num_masks: int, pixel_masks: bool = False) -> torch.Tensor:
    """Mask ids as uint8 [B, *shape] from the mask words ``keys[:, 2:4]``; pixel masks share an id over channels."""
    return _ops().fade_mask_ids(keys, [int(s) for s in shape], int(num_masks), bool(pixel_masks))


def philox_words(key: torch.Tensor, index: torch.Tensor, counter_high: Optional[torch.Tensor] = None) -> torch.Tensor:
    """int64 [n, 4]: the Philox4x32-10 words (each in [0, 2**32)) of key[j] and counter (index[j],
    counter_high[j]) (counter_high default 0)."""
    return _ops().philox_words(key, index, counter_high)


__all__ = ["available", "fade_mask_ids", "fade_noise", "fade_step_", "philox_words", "unavailable_reason"]
