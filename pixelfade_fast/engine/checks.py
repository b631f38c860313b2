"""Input checks of ``protect``: every user mistake gets a message that says what to do."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..feature_model import model_device


def check_images(images: torch.Tensor, model: nn.Module) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a float tensor [N, 3, H, W] in [0, 1], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have rank 4 [N, 3, H, W], got shape {list(images.shape)}")
    if images.shape[1] != 3:
        raise ValueError(f"images must have 3 (RGB) channels in dim 1, got {images.shape[1]} "
                         f"(shape {list(images.shape)}); channels-last arrays need .permute(0, 3, 1, 2)")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}; divide uint8 images by 255")
    if images.shape[0] == 0:
        raise ValueError("images is empty: nothing to protect")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"images must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]; divide uint8 images "
                         f"by 255 and pass pixels, not normalised tensors")
    device = model_device(model, images.device)
    if device != images.device:
        raise ValueError(f"model is on {device} but images are on {images.device}; move them to one device "
                         f"(e.g. images.to('{device}'))")
    size = getattr(model, "input_size", None)
    if size is not None and tuple(images.shape[2:]) != tuple(size):
        raise ValueError(f"images are {images.shape[2]}x{images.shape[3]} but the model expects "
                         f"{size[0]}x{size[1]} (H x W); resize them first (pixelfade_fast.data.load_image(size=...))")


def check_uids(uids: Sequence[int] | torch.Tensor | None, count: int) -> list[int]:
    if uids is None:
        return list(range(count))
    values = [int(u) for u in (uids.tolist() if isinstance(uids, torch.Tensor) else uids)]
    if len(values) != count:
        raise ValueError(f"uids has {len(values)} entries for {count} images; give one uid per image")
    if len(set(values)) != count:
        raise ValueError("uids must be unique: two images with one uid would share their noise")
    return values


def check_batch_size(batch_size) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def check_features(features: torch.Tensor, batch: int) -> None:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != batch:
        shape = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"the model must return features of shape [B, D] = [{batch}, D], got {shape}")
