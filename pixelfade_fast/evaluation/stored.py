"""What the suite scores when the protected images are stored (``pixelfade evaluate --format``): the decoded files.

PixelFade protects for the codec (``protect_for_storage``: ε checked on the decoded file, codec-aware for JPEG, the
bounded fallback); every other method's output is stored and decoded as it is. Without a format the suite scores
the protected pixels themselves (float, no file), as it always has.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..config import FadeConfig
from ..engine import protect_for_storage
from ..storage_format import StorageFormat, round_trip
from .methods import Method


def protect_stored(method: Method, model: nn.Module, images: torch.Tensor, seed: int, config: FadeConfig,
                   storage: StorageFormat | None) -> tuple[torch.Tensor, float | None]:
    """``method``'s protection of ``images`` as stored in ``storage`` and decoded, and the bytes per image (None
    without a storage format: the protected pixels as they are)."""
    if storage is None:
        return method.protect(model, images, seed, config), None
    if method.schedule is not None:
        result = protect_for_storage(model, images, storage, dataclasses.replace(config, schedule=method.schedule),
                                     seed=seed, progress=False)
        return result.images, result.bytes_per_image
    decoded, sizes = round_trip(method.protect(model, images, seed, config).clamp(0, 1), storage)
    return decoded, sum(sizes) / len(sizes)
