"""Public fused ops. Each call checks its arguments once, then runs the chosen backend.

What each op equals in plain PyTorch is ``pixelfade_fast.reference`` (see README, "Ops").
"""
from __future__ import annotations

from typing import Sequence

import torch

from .. import _backend
from ..op_checks import check_image_shape, check_keys
from ..step_args import BatchConstants, StepFlags, check_step, flat_step_args


def resolve_op(op: str, backend: str | None, device: torch.device):
    """The implementation of ``op`` on ``backend`` for tensors on ``device``, without argument checks: for loops
    that check their (fixed) buffers once and then call the op every step."""
    return _backend.BACKENDS[_backend.resolve(backend, device)].op(op)


def fade_step_(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, flags: StepFlags, constants: BatchConstants,
               *, backend: str | None = "auto") -> None:
    """One PixelFade step in place on ``xp`` and ``mom``; see ``pixelfade_fast.reference.fade_step_``.

    ``flags``: what the step does to each image (``StepFlags(do_co, do_pro, beta, mask_idx)``, [B] tensors);
    ``constants``: what stays fixed for the batch (``BatchConstants(keys, lo, hi, alpha, num_masks, norm,
    pixel_masks, mask_ids)``). ``constants.mask_ids``: ``fade_mask_ids(keys, xp.shape[1:], num_masks,
    pixel_masks)`` computed once per batch, so a PRO step reads one byte per element instead of drawing a Philox
    word; without them the ids are drawn.
    """
    check_step(xp, mom, grad, flags, constants)
    resolve_op("fade_step_", backend, xp.device)(*flat_step_args(xp, mom, grad, flags, constants))


def fade_noise(keys: torch.Tensor, shape: Sequence[int], *, backend: str | None = "auto") -> torch.Tensor:
    """η as float32 [B, *shape] from the noise words ``keys[:, 0:2]`` of int64 [B, 4] keys (``derive_keys``)."""
    check_keys(keys)
    shape = check_image_shape(shape)
    return resolve_op("fade_noise", backend, keys.device)(keys, shape)


def fade_mask_ids(keys: torch.Tensor, shape: Sequence[int], num_masks: int, pixel_masks: bool = False, *,
                  backend: str | None = "auto") -> torch.Tensor:
    """Mask ids as uint8 [B, *shape] from the mask words ``keys[:, 2:4]`` of int64 [B, 4] keys."""
    check_keys(keys)
    shape = check_image_shape(shape)
    if not 1 <= int(num_masks) <= 255:
        raise ValueError(f"num_masks must be in [1, 255], got {num_masks}")
    return resolve_op("fade_mask_ids", backend, keys.device)(keys, shape, int(num_masks), bool(pixel_masks))


__all__ = ["BatchConstants", "StepFlags", "fade_mask_ids", "fade_noise", "fade_step_", "resolve_op"]
