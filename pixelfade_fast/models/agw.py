"""AGW: ResNet-50 with non-local attention, GeM pooling and a BNNeck.

Architecture of Ye et al., "Deep Learning for Person Re-identification: A Survey and
Outlook" (TPAMI 2021). Module and parameter names follow the authors' code
(mangye16/ReID-Survey: modeling/baseline.py, modeling/backbones/resnet_nl.py,
modeling/layer/non_local.py, modeling/layer/gem_pool.py) so that its checkpoints load
unchanged; the code here is written independently.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import ReIDBackbone
from .resnet import RESNET50_BLOCKS, RESNET50_DIM, resnet50_stages

AGW_NON_LOCAL_COUNTS = (0, 2, 3, 0)  # non-local blocks after the last blocks of each stage


class NonLocalBlock(nn.Module):
    """Dot-product non-local block: z = x + W(y), y_i = (1/N) sum_j <theta_i, phi_j> g_j.

    ``inter_channels`` defaults to 1 because ReID-Survey's Non_local computes its
    embedding width as reduc_ratio // reduc_ratio, so its checkpoints hold 1-channel
    theta/phi/g. The attention is linear (no softmax), so y is computed as
    theta^T (phi g^T) / N, which equals the N x N form without building the N x N matrix.
    """

    def __init__(self, channels: int, inter_channels: int = 1):
        super().__init__()
        self.g = nn.Conv2d(channels, inter_channels, 1)
        self.theta = nn.Conv2d(channels, inter_channels, 1)
        self.phi = nn.Conv2d(channels, inter_channels, 1)
        self.W = nn.Sequential(nn.Conv2d(inter_channels, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = self.g(x).flatten(2)  # [B, C', N]
        theta = self.theta(x).flatten(2)
        phi = self.phi(x).flatten(2)
        context = torch.bmm(phi, g.transpose(1, 2)) / (h * w)  # [B, C', C']
        y = torch.bmm(context.transpose(1, 2), theta)  # [B, C', N]
        return x + self.W(y.view(b, -1, h, w))


class GeMPooling(nn.Module):
    """Generalised-mean pooling over all positions, (mean x^p)^(1/p), with learnable p."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.full((1,), float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3))
        return pooled.pow(1.0 / self.p)


class ResNet50NL(nn.Module):
    """ResNet-50 trunk with non-local blocks after the last blocks of chosen stages.

    As in ReID-Survey's ResNetNL there is no ReLU between the stem's bn1 and the max
    pool; its trained weights expect that, so it is kept.
    """

    def __init__(self, *, last_stride: int = 1,
                 non_local_counts: tuple[int, int, int, int] = AGW_NON_LOCAL_COUNTS):
        super().__init__()
        if len(non_local_counts) != 4 or any(
                not 0 <= n <= b for n, b in zip(non_local_counts, RESNET50_BLOCKS)):
            raise ValueError(f"non_local_counts must give 4 counts, each between 0 and the stage's "
                             f"block count {RESNET50_BLOCKS}, got {non_local_counts!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet50_stages(last_stride)
        for i, nl_count in enumerate(non_local_counts):
            channels = 256 * 2 ** i
            setattr(self, f"NL_{i + 1}", nn.ModuleList(NonLocalBlock(channels) for _ in range(nl_count)))
        self.out_channels = RESNET50_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.bn1(self.conv1(x)))
        for stage, non_locals in ((self.layer1, self.NL_1), (self.layer2, self.NL_2),
                                  (self.layer3, self.NL_3), (self.layer4, self.NL_4)):
            first_nl = len(stage) - len(non_locals)
            for i, block in enumerate(stage):
                x = block(x)
                if i >= first_nl:
                    x = non_locals[i - first_nl](x)
        return x


class AGW(ReIDBackbone):
    """AGW baseline: ResNet50NL, GeM pooling, BNNeck (BatchNorm1d whose bias is frozen).

    Feature layers: "bnneck" (default; the BNNeck output, AGW's test-time feature) and
    "gem" (pooled feature before the BNNeck). ``num_classes=0`` omits the classifier.
    """

    default_feature_layer = "bnneck"

    def __init__(self, *, num_classes: int = 0, last_stride: int = 1,
                 non_local_counts: tuple[int, int, int, int] = AGW_NON_LOCAL_COUNTS, gem_p: float = 3.0):
        super().__init__()
        self.base = ResNet50NL(last_stride=last_stride, non_local_counts=non_local_counts)
        dim = self.base.out_channels
        self.global_pool = GeMPooling(gem_p)
        self.bottleneck = nn.BatchNorm1d(dim)
        self.bottleneck.bias.requires_grad_(False)  # BNNeck: scale only, no shift is learned
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        self.feature_dims = {"bnneck": dim, "gem": dim}
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, NonLocalBlock):
                # Zero output scale: each non-local block starts as the identity.
                nn.init.zeros_(m.W[1].weight)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, 0.0, 0.001)

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        pooled = self.global_pool(self.base(x))
        return pooled if layer == "gem" else self.bottleneck(pooled)
