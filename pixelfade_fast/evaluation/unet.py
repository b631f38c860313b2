"""The attacker's recovery network: a compact pix2pix-style U-Net (Isola et al. 2017, "U-Net 256" shape).

Encoder: ``depth`` stride-2 4x4 convolutions (LeakyReLU 0.2; no norm on the first). Decoder: stride-2 4x4
transposed convolutions (ReLU), each followed by concatenation with the encoder feature of the same size;
the last one maps to the output channels and a sigmoid gives pixels in (0, 1). Two departures from pix2pix,
both so that a prediction depends only on its own input: GroupNorm instead of BatchNorm, and no dropout.
Inputs whose sides are not multiples of 2**depth are edge-padded and the output cropped back. Optionally
(``input_skip``) a 1x1 convolution of the input is added to the head's logits: a full-resolution path on which
the network can pass the protected pixels through, or learn to ignore them, without relearning them through the
down-sampled levels (the first level already works at half resolution). ``blocks`` adds that many residual
3x3 convolution blocks after every encoder and decoder level (depth of processing per scale, which a one-layer
pix2pix level lacks; a deblurring attacker needs it).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORM_GROUPS = 8


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(NORM_GROUPS, channels), channels)


class ResidualBlock(nn.Module):
    """x + conv3x3(ReLU(GroupNorm(conv3x3(x)))), the second convolution starting at zero (an identity at first)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), _norm(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RecoveryUNet(nn.Module):
    """U-Net from ``in_channels`` (3 protected pixels, +3 for the known-noise attacker) to 3 pixels in (0, 1).

    width: channels of the first encoder level (doubled per level, capped at ``max_width``).
    depth: down-sampling levels; the bottleneck is (H / 2**depth) x (W / 2**depth).
    blocks: residual 3x3 blocks after each encoder and decoder level (0: the plain pix2pix U-Net).
    The defaults (width 32, depth 4, ~1.5 M weights) train a few epochs on CPU on 64x32 .. 256x128 crops.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 32, depth: int = 4,
                 max_width: int = 256, input_skip: bool = False, blocks: int = 0) -> None:
        super().__init__()
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("width", width, 1), ("depth", depth, 1), ("max_width", max_width, width),
                                 ("blocks", blocks, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"RecoveryUNet {name} must be an integer >= {low}, got {value!r}")
        self.in_channels = in_channels
        self.depth = depth
        channels = [min(width * 2 ** level, max_width) for level in range(depth)]
        self.down = nn.ModuleList()
        previous = in_channels
        for level, size in enumerate(channels):
            layers = [nn.Conv2d(previous, size, 4, stride=2, padding=1, bias=level == 0)]
            if level > 0:
                layers.append(_norm(size))
            layers.append(nn.LeakyReLU(0.2))
            layers.extend(ResidualBlock(size) for _ in range(blocks))
            self.down.append(nn.Sequential(*layers))
            previous = size
        self.up = nn.ModuleList()
        for level in reversed(range(1, depth)):
            # input: the deeper decoder output concatenated with its skip (the bottleneck has no skip)
            source = channels[level] if level == depth - 1 else 2 * channels[level]
            self.up.append(nn.Sequential(nn.ConvTranspose2d(source, channels[level - 1], 4, stride=2, padding=1,
                                                            bias=False),
                                         _norm(channels[level - 1]), nn.ReLU(),
                                         *(ResidualBlock(channels[level - 1]) for _ in range(blocks))))
        last_source = channels[0] if depth == 1 else 2 * channels[0]
        self.head = nn.ConvTranspose2d(last_source, out_channels, 4, stride=2, padding=1)
        self.input_skip = nn.Conv2d(in_channels, out_channels, 1, bias=False) if input_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"RecoveryUNet expects [N, {self.in_channels}, H, W] inputs, got {list(x.shape)}")
        height, width = x.shape[2], x.shape[3]
        multiple = 2 ** self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        logits = self.input_skip(x) if self.input_skip is not None else 0.0
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return torch.sigmoid(self.head(x) + logits)[:, :, :height, :width]
