"""Omni-Scale Network (OSNet) for person Re-ID.

Architecture of Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification"
(ICCV 2019). Module and parameter names follow torchreid's implementation
(KaiyangZhou/deep-person-reid, torchreid/models/osnet.py) so that its released
checkpoints load unchanged; the code here is written independently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import ReIDBackbone, kaiming_init

# Channels of (stem, stage 2, stage 3, stage 4) for each width multiplier (paper Sec. 3.3).
OSNET_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}


class ConvBN(nn.Module):
    """Bias-free convolution, then BatchNorm (or affine InstanceNorm), then optional ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, *, stride: int = 1,
                 relu: bool = True, instance_norm: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=False)
        # torchreid names the normalisation "bn" even when it is an InstanceNorm.
        self.bn = nn.InstanceNorm2d(c_out, affine=True) if instance_norm else nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class LightConv3x3(nn.Module):
    """Factorised 3x3 convolution: linear pointwise conv, depthwise 3x3, BN, ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, groups=c_out, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Per-channel sigmoid weights computed from the globally pooled input, applied to it."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


class OSBlock(nn.Module):
    """Residual bottleneck with four streams of 1-4 stacked LightConv3x3 (receptive fields
    3, 5, 7, 9) fused by one shared channel gate."""

    def __init__(self, c_in: int, c_out: int, *, instance_norm: bool = False,
                 bottleneck_reduction: int = 4):
        super().__init__()
        mid = c_out // bottleneck_reduction
        self.conv1 = ConvBN(c_in, mid, 1)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = ConvBN(mid, c_out, 1, relu=False)
        self.downsample = ConvBN(c_in, c_out, 1, relu=False) if c_in != c_out else None
        self.IN = nn.InstanceNorm2d(c_out, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        gate = self.gate
        fused = gate(self.conv2a(x1)) + gate(self.conv2b(x1)) + gate(self.conv2c(x1)) + gate(self.conv2d(x1))
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.conv3(fused) + identity
        if self.IN is not None:
            out = self.IN(out)
        return F.relu(out)


def _stage(c_in: int, c_out: int, *, downscale: bool, instance_norm: bool = False) -> nn.Sequential:
    """Two OSBlocks, then (if downscale) a 1x1 ConvBN and 2x2 average pooling."""
    layers: list[nn.Module] = [
        OSBlock(c_in, c_out, instance_norm=instance_norm),
        OSBlock(c_out, c_out, instance_norm=instance_norm),
    ]
    if downscale:
        layers.append(nn.Sequential(ConvBN(c_out, c_out, 1), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(ReIDBackbone):
    """OSNet with a 512-d fully connected embedding (Linear + BN + ReLU).

    Feature layers: "fc" (default; the embedding torchreid returns in eval mode) and
    "pool" (global average of the last feature map, before fc).
    ``instance_norm=True`` gives the OSNet-IBN variant (InstanceNorm in the stem and
    after each block of the first stage). ``num_classes=0`` omits the classifier.
    """

    default_feature_layer = "fc"

    def __init__(self, channels: tuple[int, int, int, int], *, num_classes: int = 0,
                 feature_dim: int = 512, instance_norm: bool = False):
        super().__init__()
        if len(channels) != 4 or any(int(c) <= 0 for c in channels):
            raise ValueError(f"channels must be 4 positive ints (stem, stage2-4), got {channels!r}")
        c0, c1, c2, c3 = channels
        self.conv1 = ConvBN(3, c0, 7, stride=2, instance_norm=instance_norm)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, downscale=True, instance_norm=instance_norm)
        self.conv3 = _stage(c1, c2, downscale=True)
        self.conv4 = _stage(c2, c3, downscale=False)
        self.conv5 = ConvBN(c3, c3, 1)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim),
                                nn.ReLU(inplace=True))
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self.feature_dims = {"fc": feature_dim, "pool": c3}
        kaiming_init(self)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        pooled = self.global_avgpool(self.feature_maps(x)).flatten(1)
        return pooled if layer == "pool" else self.fc(pooled)
