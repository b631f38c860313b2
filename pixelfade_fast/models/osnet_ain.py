"""OSNet-AIN: OSNet with instance normalisation inside chosen residual blocks.

Architecture of Zhou et al., "Learning Generalisable Omni-Scale Representations for Person
Re-Identification" (TPAMI 2021). Module and parameter names follow torchreid's
torchreid/models/osnet_ain.py (KaiyangZhou/deep-person-reid), whose layout differs from plain OSNet
(osnet.py): each block keeps its four streams in a ModuleList ``conv2`` of ``layers`` Sequentials,
the stage transitions are separate modules ``pool2``/``pool3``, and an IN block's ``conv3`` has no
BatchNorm because an affine InstanceNorm ``IN`` normalises the residual branch before the sum
(plain OSNet-IBN normalises after the sum). The code here is written independently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import ReIDBackbone, kaiming_init
from .osnet import OSNET_CHANNELS, ChannelGate, ConvBN, LightConv3x3

OSNET_AIN_CHANNELS = {name.replace("osnet_", "osnet_ain_"): c for name, c in OSNET_CHANNELS.items()}
# Per stage (conv2, conv3, conv4), per block: whether it is an IN block (torchreid's OSBlockINin).
AIN_BLOCKS = ((True, True), (False, True), (True, False))
STREAM_DEPTHS = (1, 2, 3, 4)  # LightConv3x3 layers per stream: receptive fields 3, 5, 7, 9


class LightConvStream(nn.Module):
    """``depth`` stacked LightConv3x3 layers (torchreid keeps them in ``layers``)."""

    def __init__(self, channels: int, depth: int):
        super().__init__()
        self.layers = nn.Sequential(*(LightConv3x3(channels, channels) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Conv1x1(nn.Module):
    """Bias-free 1x1 convolution without normalisation (the IN block normalises its output)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class AINBlock(nn.Module):
    """Omni-scale residual bottleneck of OSNet-AIN; with ``instance_norm`` an IN block, whose residual
    branch ends in 1x1 conv + affine InstanceNorm instead of 1x1 conv + BatchNorm."""

    def __init__(self, c_in: int, c_out: int, *, instance_norm: bool, bottleneck_reduction: int = 4):
        super().__init__()
        mid = c_out // bottleneck_reduction
        self.conv1 = ConvBN(c_in, mid, 1)
        self.conv2 = nn.ModuleList(LightConvStream(mid, depth) for depth in STREAM_DEPTHS)
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1(mid, c_out) if instance_norm else ConvBN(mid, c_out, 1, relu=False)
        self.downsample = ConvBN(c_in, c_out, 1, relu=False) if c_in != c_out else None
        self.IN = nn.InstanceNorm2d(c_out, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        fused = sum(self.gate(stream(x1)) for stream in self.conv2)
        branch = self.conv3(fused)
        if self.IN is not None:
            branch = self.IN(branch)
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(branch + identity)


class OSNetAIN(ReIDBackbone):
    """OSNet-AIN with a 512-d fully connected embedding (Linear + BN + ReLU), as torchreid's
    osnet_ain_x* builders make it (stem normalised by an affine InstanceNorm).

    Feature layers: "fc" (default; torchreid's eval-mode output) and "pool" (global average of the
    last feature map). ``num_classes`` > 0 adds the identity classifier.
    """

    default_feature_layer = "fc"

    def __init__(self, channels: tuple[int, int, int, int], *, num_classes: int = 0, feature_dim: int = 512):
        super().__init__()
        if len(channels) != 4 or any(int(c) <= 0 for c in channels):
            raise ValueError(f"channels must be 4 positive ints (stem, stage2-4), got {channels!r}")
        c0, c1, c2, c3 = channels
        self.conv1 = ConvBN(3, c0, 7, stride=2, instance_norm=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._stage(c0, c1, AIN_BLOCKS[0])
        self.pool2 = nn.Sequential(ConvBN(c1, c1, 1), nn.AvgPool2d(2, stride=2))
        self.conv3 = self._stage(c1, c2, AIN_BLOCKS[1])
        self.pool3 = nn.Sequential(ConvBN(c2, c2, 1), nn.AvgPool2d(2, stride=2))
        self.conv4 = self._stage(c2, c3, AIN_BLOCKS[2])
        self.conv5 = ConvBN(c3, c3, 1)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self.feature_dims = {"fc": feature_dim, "pool": c3}
        kaiming_init(self)

    @staticmethod
    def _stage(c_in: int, c_out: int, instance_norms: tuple[bool, ...]) -> nn.Sequential:
        return nn.Sequential(*(AINBlock(c_in if i == 0 else c_out, c_out, instance_norm=use_in)
                               for i, use_in in enumerate(instance_norms)))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x))
        return self.conv5(self.conv4(x))

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        pooled = self.feature_maps(x).mean(dim=(2, 3))
        return pooled if layer == "pool" else self.fc(pooled)
