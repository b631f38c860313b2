"""A ~50k-parameter CNN used to run engine and CLI tests in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from .backbone import ReIDBackbone

TINY_CHANNELS = (16, 32, 48, 64)


class TinyCNN(ReIDBackbone):
    """Four stride-2 3x3 conv + BN + ReLU stages, global average pool, linear embedding.

    Every operation acts on each image separately (BatchNorm uses running statistics in
    eval mode), so eval-mode features do not depend on the rest of the batch.
    Feature layers: "fc" (default, 64-d) and "pool" (64-d, before the linear layer).
    """

    default_feature_layer = "fc"

    def __init__(self, *, num_classes: int = 0, feature_dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in TINY_CHANNELS:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self.feature_dims = {"fc": feature_dim, "pool": c_in}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        pooled = self.body(x).mean(dim=(2, 3))
        return pooled if layer == "pool" else self.fc(pooled)
