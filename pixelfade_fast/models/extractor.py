"""FeatureExtractor: any network returning [B, D] features, with the input space it expects.

``protect``, ``extract_features`` and the baselines take any module returning [B, D]; a module with
``input_size``, ``mean`` and ``std`` attributes also tells them the image size it needs and the input space
``(pixel - mean) / std`` of its inputs (``InputSpace.of``). This adapter gives those attributes to a plain
network (an ONNX import, a callable's module, the image branch of a text-image dual encoder, a cross-modality
model).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..feature_model import features_of
from ..input_space import IMAGENET_MEAN, IMAGENET_STD, InputSpace


class FeatureExtractor(nn.Module):
    """``net`` (normalised images [B, C, H, W] -> [B, D] features, or a tuple / dict holding them) with its
    ``input_size`` (H, W), per-channel ``mean`` / ``std`` and a ``model_id``; always in eval mode.

    forward takes images in ``input_space``, as ``protect`` feeds them (``input_space.normalise(pixels)``).
    The state dict is ``net``'s, prefixed "net.".
    """

    def __init__(self, net: nn.Module, input_size: Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, *, model_id: str = "") -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        size = tuple(input_size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
            raise ValueError(f"input_size must be (height, width), two positive ints, got {input_size!r}")
        space = InputSpace(tuple(mean), tuple(std))
        self.net = net
        self.input_size = (int(size[0]), int(size[1]))
        self.model_id = str(model_id)
        self.register_buffer("mean", torch.tensor(space.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(space.std).view(1, -1, 1, 1), persistent=False)
        self.eval()  # an inference-time feature extractor (some nets, e.g. ONNX imports, refuse training mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return features_of(self.net(x))

    @property
    def input_space(self) -> InputSpace:
        return InputSpace.of(self, len(self.mean.reshape(-1)))

    def extra_repr(self) -> str:
        return f"model_id={self.model_id!r}, input_size={self.input_size}"
