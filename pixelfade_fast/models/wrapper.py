"""ReIDModel: a backbone plus everything needed to feed it (input size, input space)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..input_space import IMAGENET_MEAN, IMAGENET_STD, InputSpace
from .backbone import ReIDBackbone


class ReIDModel(nn.Module):
    """An authorised Re-ID feature extractor in inference mode.

    Input of :meth:`forward` is a batch in the model's input space ``input_space``,
    x = (pixel - mean) / std with pixels in [0, 1], of spatial size ``input_size`` (H, W);
    output is float features [B, feature_dim] taken at ``feature_layer`` of the backbone
    (float32 under autocast; float64 for a float64 model).

    The wrapper puts the backbone in eval mode and keeps it there (BatchNorm uses running
    statistics, so features are per-image); ``train(True)`` raises, because feature
    semantics would change. Train ``model.backbone`` directly if you need to. Parameters
    are not frozen here: callers that only need input gradients set requires_grad_(False).
    """

    def __init__(self, backbone: ReIDBackbone, *, input_size: tuple[int, int] = (256, 128),
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 feature_layer: str | None = None, model_id: str = ""):
        super().__init__()
        if not isinstance(backbone, ReIDBackbone):
            raise TypeError(f"backbone must be a ReIDBackbone (from pixelfade_fast.models), "
                            f"got {type(backbone).__name__}")
        if (len(input_size) != 2 or not all(isinstance(s, int) and s > 0 for s in input_size)):
            raise ValueError(f"input_size must be (height, width) positive ints, got {input_size!r}")
        space = InputSpace(tuple(mean), tuple(std))
        if space.channels != 3:
            raise ValueError(f"mean and std must hold 3 per-channel (RGB) values, got {mean!r}, {std!r}")
        layer = backbone.default_feature_layer if feature_layer is None else feature_layer
        backbone.check_feature_layer(layer)

        self.backbone = backbone
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.feature_layer = layer
        self.model_id = str(model_id)
        # Not persistent: the state dict of a ReIDModel is "backbone.*" only.
        # The mean/std attributes are how any model states its input space (InputSpace.of reads them).
        self.register_buffer("mean", torch.tensor(space.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(space.std).view(1, 3, 1, 1), persistent=False)
        super().train(False)

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dims[self.feature_layer]

    def train(self, mode: bool = True) -> ReIDModel:
        if mode:
            raise RuntimeError("ReIDModel is an inference-mode feature extractor and cannot be put "
                               "in training mode; call model.backbone.train() to train the network")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a normalised image batch [B, 3, H, W], got shape {tuple(x.shape)}")
        features = self.backbone.features(x, self.feature_layer)
        # Under autocast the last layer may run in half precision; callers get float32.
        return features if features.dtype in (torch.float32, torch.float64) else features.float()

    @property
    def input_space(self) -> InputSpace:
        """The input space of ``forward``: pixels to x and back, the pixel bounds, 8-bit rounding."""
        return InputSpace.of(self)

    def extra_repr(self) -> str:
        return (f"model_id={self.model_id!r}, input_size={self.input_size}, "
                f"feature_layer={self.feature_layer!r}, feature_dim={self.feature_dim}")
