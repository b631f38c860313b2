"""The interface every backbone of the model zoo implements, and the initialisation most of them share."""

from __future__ import annotations

import torch
from torch import nn


class ReIDBackbone(nn.Module):
    """A Re-ID network that can return the embedding of one of several named layers.

    Subclasses set ``feature_dims`` (layer name -> embedding size) and
    ``default_feature_layer``, and implement :meth:`features`. Modules named
    ``classifier`` hold identity logits used only in training; they exist so that
    checkpoints load with their original key names, and are never used for features.
    """

    feature_dims: dict[str, int]
    default_feature_layer: str

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Embeddings [B, feature_dims[layer]] of a normalised batch x [B, 3, H, W]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, self.default_feature_layer)

    def construction_options(self) -> dict[str, object]:
        """Constructor options the state dict's keys and shapes do not reveal (save_safetensors records them)."""
        return {}

    def check_feature_layer(self, layer: str) -> None:
        if layer not in self.feature_dims:
            raise ValueError(
                f"feature_layer={layer!r} is not a layer of {type(self).__name__}; "
                f"choose one of {sorted(self.feature_dims)}"
            )


def kaiming_init(module: nn.Module) -> None:
    """He-normal convolutions (fan_out), unit-scale zero-shift norms, N(0, 0.01) linear layers."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
