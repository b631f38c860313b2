"""pix2pix's networks (Isola et al. 2017) as the reviewer's attackers use them: the U-Net generator and the
PatchGAN discriminator, both with BatchNorm as published.

``UnetGenerator(downsamplings=7, filters=64)`` is pix2pix's ``unet_128``: nested skip blocks, 4x4 stride-2
convolutions down (LeakyReLU 0.2, BatchNorm except on the outermost and innermost), 4x4 stride-2 transposed
convolutions up (ReLU, BatchNorm except on the outermost), channels ``filters · min(2^level, 8)``, no dropout
(the authors' recovery attack does not enable it), tanh output. Written here (pix2pix's code is not a package),
with two interface choices: the output is mapped from tanh's (−1, 1) to pixels in (0, 1), and inputs whose sides
are not multiples of 2^downsamplings are edge-padded and the output cropped back (pix2pix needs 128x128 inputs;
pedestrians are 2:1). ``PatchDiscriminator`` is pix2pix's 3-layer ``basic`` PatchGAN on (input, image) pairs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAX_MULTIPLIER = 8


class _SkipBlock(nn.Module):
    """x -> cat(x, up(inner(down(x)))) (the outermost block returns up(...) alone)."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None, *, in_channels: int | None = None,
                 outermost: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        source = in_channels if in_channels is not None else outer
        down = nn.Conv2d(source, inner, 4, stride=2, padding=1, bias=False)
        if outermost:
            layers = [down, submodule, nn.ReLU(), nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1),
                      nn.Tanh()]
        elif submodule is None:  # innermost: no norm on the way down, no skip inside
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(),
                      nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2), down, nn.BatchNorm2d(inner), submodule, nn.ReLU(),
                      nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=False),
                      nn.BatchNorm2d(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net from ``in_channels`` to 3 pixels in (0, 1); ``downsamplings`` levels, ``filters`` at the
    first (pix2pix's ngf)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, downsamplings: int = 7, filters: int = 64) -> None:
        super().__init__()
        for name, value, low in (("downsamplings", downsamplings, 2), ("filters", filters, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"UnetGenerator {name} must be an integer >= {low}, got {value!r}")
        self.in_channels = in_channels
        self.downsamplings = downsamplings
        width = [filters * min(2 ** level, MAX_MULTIPLIER) for level in range(downsamplings)]
        self.net = _SkipBlock(out_channels, width[0], _chain(width), in_channels=in_channels, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UnetGenerator expects [N, {self.in_channels}, H, W] inputs, got {list(x.shape)}")
        height, width = x.shape[2], x.shape[3]
        multiple = 2 ** self.downsamplings
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return (0.5 * (self.net(x) + 1.0))[:, :, :height, :width]


def _chain(width: list[int]) -> nn.Module:
    """The nested blocks below the outermost: level 1 (outer width[0], inner width[1]) down to the innermost."""
    block = _SkipBlock(width[-2], width[-1], None)
    for level in reversed(range(1, len(width) - 1)):
        block = _SkipBlock(width[level - 1], width[level], block)
    return block


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: logits [N, 1, h, w], one per patch of the (condition, image) pair (70x70 with the
    default 3 layers)."""

    def __init__(self, in_channels: int = 6, filters: int = 64, layers: int = 3) -> None:
        super().__init__()
        parts = [nn.Conv2d(in_channels, filters, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        multiplier = 1
        for layer in range(1, layers + 1):
            previous, multiplier = multiplier, min(2 ** layer, MAX_MULTIPLIER)
            stride = 2 if layer < layers else 1
            parts += [nn.Conv2d(filters * previous, filters * multiplier, 4, stride=stride, padding=1, bias=False),
                      nn.BatchNorm2d(filters * multiplier), nn.LeakyReLU(0.2)]
        parts.append(nn.Conv2d(filters * multiplier, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*parts)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))
