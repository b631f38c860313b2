"""Random augmentations of the attacker's training pairs: flips, small translations, colour jitter.

A geometric transform is drawn once per pair and applied to every tensor of the pair (protected input, η,
original), so the pair stays aligned. Colour jitter is applied to an original before it is protected, which is
valid only where the attacker protects each augmented original afresh (see ``AttackSettings.colour_jitter``).
Parameters are drawn from a CPU generator so a seed gives the same augmentations on any device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Geometry:
    """Per-pair transform: a horizontal flip (bool [N]) and a translation (int [N, 2], rows and columns)."""

    flip: torch.Tensor
    shift: torch.Tensor


def draw_geometry(count: int, flip: bool, max_shift: int, generator: torch.Generator) -> Geometry:
    flips = torch.rand(count, generator=generator) < 0.5 if flip else torch.zeros(count, dtype=torch.bool)
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 2), generator=generator) if max_shift > 0 \
        else torch.zeros(count, 2, dtype=torch.long)
    return Geometry(flips, shifts)


def crop_size(image: tuple[int, int], crop: tuple[int, int] | None) -> tuple[int, int] | None:
    """The crop actually taken from images of size ``image``: ``crop`` clamped to the image, None for none."""
    if crop is None or (crop[0] >= image[0] and crop[1] >= image[1]):
        return None
    return min(crop[0], image[0]), min(crop[1], image[1])


def draw_crops(count: int, image: tuple[int, int], crop: tuple[int, int] | None,
               generator: torch.Generator) -> torch.Tensor | None:
    """Top-left corners (int [N, 2]) of random crops of size ``crop`` inside ``image``; None for no crop."""
    if crop is None:
        return None
    rows = torch.randint(0, image[0] - crop[0] + 1, (count,), generator=generator)
    cols = torch.randint(0, image[1] - crop[1] + 1, (count,), generator=generator)
    return torch.stack([rows, cols], dim=1)


def apply_crops(x: torch.Tensor, corners: torch.Tensor | None, crop: tuple[int, int] | None) -> torch.Tensor:
    if corners is None:
        return x
    return torch.stack([x[i, :, r:r + crop[0], c:c + crop[1]] for i, (r, c) in enumerate(corners.tolist())])


def apply_geometry(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """x [N, C, H, W] flipped left-right where ``geometry.flip`` and moved by ``geometry.shift`` pixels
    (content moves down/right for positive shifts; the uncovered border repeats the edge pixels)."""
    flip = geometry.flip.to(x.device).reshape(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(3), x)
    pad = int(geometry.shift.abs().max()) if geometry.shift.numel() else 0
    if pad == 0:
        return x
    height, width = x.shape[2], x.shape[3]
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = [pad - int(dy) for dy in geometry.shift[:, 0]]
    cols = [pad - int(dx) for dx in geometry.shift[:, 1]]
    return torch.stack([padded[i, :, r:r + height, c:c + width] for i, (r, c) in enumerate(zip(rows, cols))])


def colour_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """x [N, C, H, W] in [0, 1] with a random per-image, per-channel gain in [1 − s, 1 + s] and offset in
    [−s/2, s/2], clamped back to [0, 1]."""
    if strength == 0:
        return x
    shape = (x.shape[0], x.shape[1], 1, 1)
    gain = 1.0 + strength * (2.0 * torch.rand(shape, generator=generator) - 1.0)
    offset = 0.5 * strength * (2.0 * torch.rand(shape, generator=generator) - 1.0)
    return (x * gain.to(x.device, x.dtype) + offset.to(x.device, x.dtype)).clamp(0.0, 1.0)
