"""ResNet-50 with torchvision's module names, as torchreid, fast-reid and ReID-Survey build it.

Bottleneck blocks carry the stride in the 3x3 convolution (torchvision's "ResNet v1.5"). The
torchreid model (torchreid/models/resnet.py of KaiyangZhou/deep-person-reid, ``resnet50``) is
:class:`ResNet50` with its defaults; fast-reid's backbone (fastreid/modeling/backbones/resnet.py of
JDAI-CV/fast-reid) is the same trunk with last stride 1, optionally IBN-a, and its own stem pooling.
The code here is written independently; only module names and shapes follow those sources.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import ReIDBackbone, kaiming_init

RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET50_DIM = 2048

# The 3x3/2 max pool after the stem. "padded": 1 pixel of padding (torchvision, torchreid, ReID-Survey,
# fast-reid before commit 42cadae of 2020-11-06); "ceil": no padding, ceil mode (fast-reid since then).
STEM_POOLS = ("padded", "ceil")


def stem_pool(kind: str) -> nn.MaxPool2d:
    if kind not in STEM_POOLS:
        raise ValueError(f"stem_pool must be one of {STEM_POOLS}, got {kind!r}")
    if kind == "ceil":
        return nn.MaxPool2d(3, stride=2, ceil_mode=True)
    return nn.MaxPool2d(3, stride=2, padding=1)


class IBN(nn.Module):
    """IBN-a normalisation (Pan et al., ECCV 2018): affine InstanceNorm on the first half of the
    channels, BatchNorm on the rest (fast-reid's fastreid/layers/batch_norm.py names them IN and BN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, rest = x.split([self.half, x.shape[1] - self.half], dim=1)
        return torch.cat((self.IN(first), self.BN(rest)), dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 carrying the stride, 1x1 expanding 4x) with residual.

    ``ibn=True`` replaces bn1 by :class:`IBN` (IBN-a)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1, *, ibn: bool = False):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = IBN(width) if ibn else nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


def resnet50_stages(last_stride: int, *, ibn: bool = False) -> list[nn.Sequential]:
    """The four stages (layer1-4) of ResNet-50; IBN-a, when asked, in the first three (as IBN-Net and
    fast-reid place it)."""
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
    stages, c_in = [], 64
    for i, (blocks, stride) in enumerate(zip(RESNET50_BLOCKS, (1, 2, 2, last_stride))):
        width, use_ibn = 64 * 2 ** i, ibn and i < 3
        stage = [Bottleneck(c_in, width, stride, ibn=use_ibn)]
        c_in = width * Bottleneck.expansion
        stage += [Bottleneck(c_in, width, ibn=use_ibn) for _ in range(blocks - 1)]
        stages.append(nn.Sequential(*stage))
    return stages


class ResNet50(ReIDBackbone):
    """ResNet-50 trunk with global average pooling; torchreid's ``resnet50`` with its defaults.

    torchreid builds resnet50 with last_stride=2 and no fc layers (fc_dims=None), so its eval-mode
    feature is the 2048-d average-pooled last feature map: the one feature layer here, "pool".
    ``num_classes`` > 0 adds torchreid's identity classifier (Linear with bias).
    """

    default_feature_layer = "pool"

    def __init__(self, *, num_classes: int = 0, last_stride: int = 2, ibn: bool = False,
                 stem_pool_kind: str = "padded"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = stem_pool(stem_pool_kind)
        self.stem_pool_kind = stem_pool_kind
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet50_stages(last_stride, ibn=ibn)
        self.classifier = nn.Linear(RESNET50_DIM, num_classes) if num_classes > 0 else None
        self.feature_dims = {"pool": RESNET50_DIM}
        kaiming_init(self)

    def construction_options(self) -> dict[str, object]:
        return {"stem_pool_kind": self.stem_pool_kind}

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        return self.feature_maps(x).mean(dim=(2, 3))
