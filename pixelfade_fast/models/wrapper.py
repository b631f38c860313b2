"""ReIDModel: a backbone plus everything needed to feed it (input size, normalisation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .backbone import ReIDBackbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _three_floats(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{name} must hold 3 per-channel (RGB) values, got {value!r}")
    return values  # type: ignore[return-value]


class ReIDModel(nn.Module):
    """An authorised Re-ID feature extractor in inference mode.

    Input of :meth:`forward` is a batch in the model's normalised space,
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
        mean_t, std_t = _three_floats("mean", mean), _three_floats("std", std)
        if min(std_t) <= 0:
            raise ValueError(f"std must be positive per channel, got {std!r}")
        layer = backbone.default_feature_layer if feature_layer is None else feature_layer
        backbone.check_feature_layer(layer)

        self.backbone = backbone
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.feature_layer = layer
        self.model_id = str(model_id)
        # Not persistent: the state dict of a ReIDModel is "backbone.*" only.
        self.register_buffer("mean", torch.tensor(mean_t).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std_t).view(1, 3, 1, 1), persistent=False)
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

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], [B, 3, H, W] -> model input (pixels - mean) / std."""
        return (pixels - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model input -> pixels (x * std + mean); not clamped to [0, 1]."""
        return x * self.std + self.mean

    def pixel_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel bounds [3] of the model input that correspond to pixels 0 and 1."""
        mean, std = self.mean.view(3), self.std.view(3)
        return -mean / std, (1.0 - mean) / std

    def extra_repr(self) -> str:
        return (f"model_id={self.model_id!r}, input_size={self.input_size}, "
                f"feature_layer={self.feature_layer!r}, feature_dim={self.feature_dim}")
