"""FeatureExtractor: any network returning [B, D] features, with the input space it expects.

``protect``, ``extract_features`` and the baselines take any module returning [B, D]; a module with
``input_size``, ``mean`` and ``std`` attributes also tells them the image size it needs and the normalisation
``(pixel - mean) / std`` of its inputs. This adapter gives those attributes to a plain network (the image branch
of a text-image dual encoder, a cross-modality model, a network from elsewhere).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .wrapper import IMAGENET_MEAN, IMAGENET_STD


class FeatureExtractor(nn.Module):
    """``net`` (normalised images [B, C, H, W] -> [B, D]) with its input size and per-channel mean / std.

    forward takes normalised images, as ``protect`` feeds them; ``normalize`` maps pixels in [0, 1] there.
    The state dict is ``net``'s, prefixed "net.".
    """

    def __init__(self, net: nn.Module, input_size: tuple[int, int], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        if len(input_size) != 2 or not all(isinstance(s, int) and s > 0 for s in input_size):
            raise ValueError(f"input_size must be (height, width), two positive ints, got {input_size!r}")
        mean_t = torch.tensor([float(v) for v in mean])
        std_t = torch.tensor([float(v) for v in std])
        if mean_t.shape != std_t.shape or mean_t.dim() != 1 or not bool((std_t > 0).all()):
            raise ValueError(f"mean and std must be per-channel lists of one length with std > 0, "
                             f"got {mean!r}, {std!r}")
        self.net = net
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std_t.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], [B, C, H, W] -> the network's input (pixels - mean) / std."""
        return (pixels - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
