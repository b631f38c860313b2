"""FeatureExtractor: any feature network plus what the engine needs to feed it (input size, mean/std)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .wrapper import IMAGENET_MEAN, IMAGENET_STD, _three_floats


class FeatureExtractor(nn.Module):
    """Wraps ``net`` (normalised images [B, 3, H, W] -> [B, D] features, or a tuple/dict holding them) with its
    ``input_size`` (H, W), per-channel ``mean``/``std`` (the input space x = (pixel - mean) / std) and a
    ``model_id``: the adapter that lets any feature extractor — an ONNX import, a callable's module, the image
    branch of a dual encoder — be the authorised model of ``protect`` and ``pixelfade protect``."""

    def __init__(self, net: nn.Module, *, input_size: Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, model_id: str = "") -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        size = tuple(int(s) for s in input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be (height, width) positive ints, got {input_size!r}")
        mean_t, std_t = _three_floats("mean", mean), _three_floats("std", std)
        if min(std_t) <= 0:
            raise ValueError(f"std must be positive per channel, got {std!r}")
        self.net = net
        self.input_size = size
        self.model_id = str(model_id)
        self.register_buffer("mean", torch.tensor(mean_t).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std_t).view(1, 3, 1, 1), persistent=False)
        self.eval()  # an inference-time feature extractor (some nets, e.g. ONNX imports, refuse training mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..engine.features import features_of

        return features_of(self.net(x))

    def extra_repr(self) -> str:
        return f"model_id={self.model_id!r}, input_size={self.input_size}"
