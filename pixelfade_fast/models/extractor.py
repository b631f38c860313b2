"""FeatureExtractor: any network returning [B, D] features, with the input space it expects.

``protect``, ``extract_features`` and the baselines take any module returning [B, D]; a module with
``input_size``, ``mean`` and ``std`` attributes also tells them the image size it needs and the normalisation
``(pixel - mean) / std`` of its inputs. This adapter gives those attributes to a plain network (an ONNX import,
a callable's module, the image branch of a text-image dual encoder, a cross-modality model).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .wrapper import IMAGENET_MEAN, IMAGENET_STD


class FeatureExtractor(nn.Module):
    """``net`` (normalised images [B, C, H, W] -> [B, D] features, or a tuple / dict holding them) with its
    ``input_size`` (H, W), per-channel ``mean`` / ``std`` and a ``model_id``; always in eval mode.

    forward takes normalised images, as ``protect`` feeds them; ``normalize`` maps pixels in [0, 1] there.
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
        mean_t = torch.tensor([float(v) for v in mean])
        std_t = torch.tensor([float(v) for v in std])
        if mean_t.shape != std_t.shape or mean_t.dim() != 1 or not bool((std_t > 0).all()):
            raise ValueError(f"mean and std must be per-channel lists of one length with std > 0, "
                             f"got {mean!r}, {std!r}")
        self.net = net
        self.input_size = (int(size[0]), int(size[1]))
        self.model_id = str(model_id)
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std_t.view(1, -1, 1, 1), persistent=False)
        self.eval()  # an inference-time feature extractor (some nets, e.g. ONNX imports, refuse training mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..engine.features import features_of

        return features_of(self.net(x))

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], [B, C, H, W] -> the network's input (pixels - mean) / std."""
        return (pixels - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"model_id={self.model_id!r}, input_size={self.input_size}"
