"""Training augmentations on image batches in torch: horizontal flip, pad-and-crop, random erasing.

All random draws come from a CPU torch.Generator (one value set per image), then move to the batch's
device, so a seed gives the same augmented batch on any device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image of x [B, C, H, W] left-right with probability p."""
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_pad_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad x [B, C, H, W] by `pad` pixels on every side and crop each image back to H x W at a
    random offset (a random translation of up to `pad` pixels; zero is the mean colour in normalised space)."""
    if pad <= 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * pad + 1, (batch,), generator=generator).to(x.device)
    rows = top[:, None] + torch.arange(height, device=x.device)[None, :]      # [B, H]
    cols = left[:, None] + torch.arange(width, device=x.device)[None, :]      # [B, W]
    images = torch.arange(batch, device=x.device)[:, None, None]
    cropped = padded[images, :, rows[:, :, None], cols[:, None, :]]           # [B, H, W, C]
    # Back to contiguous NCHW: convolutions on the CPU are many times slower on channels-last strides.
    return cropped.permute(0, 3, 1, 2).contiguous()


def random_erasing(x: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                   area: tuple[float, float] = (0.02, 0.4), aspect: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Random erasing (Zhong et al., AAAI 2020): with probability p per image, fill one rectangle of
    area fraction in `area` and height/width ratio in `aspect` (log-uniform) with zeros, i.e. the mean
    colour in normalised space. A rectangle larger than the image is clipped to it."""
    batch, _, height, width = x.shape
    erase = torch.rand(batch, generator=generator) < p
    target = _uniform(batch, *area, generator) * height * width
    ratio = torch.exp(_uniform(batch, math.log(aspect[0]), math.log(aspect[1]), generator))
    box_h = (target * ratio).sqrt().round().clamp(1, height).long()
    box_w = (target / ratio).sqrt().round().clamp(1, width).long()
    top = (_uniform(batch, 0, 1, generator) * (height - box_h + 1)).floor().long()
    left = (_uniform(batch, 0, 1, generator) * (width - box_w + 1)).floor().long()
    top, left, box_h, box_w, erase = (t.to(x.device) for t in (top, left, box_h, box_w, erase))
    ys = torch.arange(height, device=x.device)[None, :]
    xs = torch.arange(width, device=x.device)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < (top + box_h)[:, None])            # [B, H]
    in_cols = (xs >= left[:, None]) & (xs < (left + box_w)[:, None])          # [B, W]
    mask = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]   # [B, H, W]
    return x.masked_fill(mask[:, None], 0.0)


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """The training augmentation of a normalised batch: flip, then pad-and-crop, then random erasing."""
    return random_erasing(random_pad_crop(random_flip(x, generator), pad, generator), generator)
