"""Argument checks shared by every backend of the ops, so a bad call fails the same way whichever runs it.

A leaf module (imports nothing from the package): the public ops (``pixelfade_fast.ops``), the Triton kernels and
the engine all check with it, and the reference takes its constants from here.
"""
from __future__ import annotations

from typing import Sequence

import torch

NORMS = ("l1mean", "l2sq")  # the gradient normalisers of fade_step_
KEY_WORDS = 4  # int64 words per image in a keys tensor [B, KEY_WORDS]
FLOAT_DTYPES = (torch.float32, torch.float64)


def _expect(tensor: torch.Tensor, name: str, dtype: torch.dtype, shape: tuple[int, ...],
            device: torch.device) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {tensor.dtype}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(tensor.shape)}")
    if tensor.device != device:
        raise ValueError(f"{name} is on {tensor.device} but xp is on {device}; put all arguments on one device")


KEYS_LAYOUT = "noise key, noise counter word, mask key, mask counter word per image; reference.derive_keys"


def check_keys(keys: torch.Tensor) -> None:
    if (not isinstance(keys, torch.Tensor) or keys.dtype != torch.int64 or keys.dim() != 2
            or keys.shape[1] != KEY_WORDS):
        got = f"{keys.dtype} {list(keys.shape)}" if isinstance(keys, torch.Tensor) else type(keys).__name__
        raise ValueError(f"keys must be an int64 tensor of shape [B, 4] ({KEYS_LAYOUT}), got {got}")


def check_image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (C, H, W) with positive sizes, got {shape}")
    return shape


def check_step_args(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm,
                    pixel_masks, mask_ids=None) -> None:
    """The arguments of a backend's ``fade_step_``, in its order (``step_args.flat_step_args``)."""
    if not isinstance(xp, torch.Tensor) or xp.dim() != 4:
        raise ValueError(f"xp must be a [B, C, H, W] tensor, got {getattr(xp, 'shape', type(xp).__name__)}")
    if xp.dtype not in FLOAT_DTYPES:
        raise TypeError(f"xp must be float32 or float64, got {xp.dtype}")
    batch, channels = xp.shape[:2]
    device = xp.device
    _expect(mom, "mom", xp.dtype, tuple(xp.shape), device)
    _expect(grad, "grad", xp.dtype, tuple(xp.shape), device)
    _expect(do_co, "do_co", torch.bool, (batch,), device)
    _expect(do_pro, "do_pro", torch.bool, (batch,), device)
    _expect(beta, "beta", torch.float32, (batch,), device)
    _expect(mask_idx, "mask_idx", torch.int32, (batch,), device)
    _expect(keys, "keys", torch.int64, (batch, KEY_WORDS), device)
    _expect(lo, "lo", torch.float32, (channels,), device)
    _expect(hi, "hi", torch.float32, (channels,), device)
    if mask_ids is not None:
        _expect(mask_ids, "mask_ids", torch.uint8, tuple(xp.shape), device)
    if not 1 <= int(num_masks) <= 255:
        raise ValueError(f"num_masks must be in [1, 255], got {num_masks}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not 0.0 <= float(alpha) < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
