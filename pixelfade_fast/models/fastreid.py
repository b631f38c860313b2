"""fast-reid's BoT baseline ("bagtricks"): ResNet-50 (optionally IBN-a), last stride 1, pooling, BNNeck.

Architecture of Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-identification"
(CVPRW 2019) as JDAI-CV/fast-reid builds it for configs/Base-bagtricks.yml (MODEL.BACKBONE:
LAST_STRIDE 1, WITH_IBN False/True; MODEL.HEADS: EmbeddingHead, WITH_BNNECK True, POOL_LAYER
GlobalAvgPool, CLS_LAYER Linear). Module names follow fast-reid's meta_arch/baseline.py (``backbone``,
``heads``), backbones/resnet.py and heads/embedding_head.py, so that its checkpoints load after the
key mapping of :func:`fastreid_to_zoo_keys`; the code here is written independently.

In eval mode fast-reid's head returns the BNNeck output in every version read (BNneckHead of v0.1.1,
EmbeddingHead of v1.0.0 and of master); MODEL.HEADS.NECK_FEAT only picks the triplet-loss feature in
training. So the default feature layer here is "bnneck".
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .agw import GeMPooling
from .backbone import ReIDBackbone
from .resnet import RESNET50_DIM, ResNet50

FASTREID_POOLS = ("avg", "gem")


class BNNeckHead(nn.Module):
    """Global pooling, then a BatchNorm whose shift is frozen (fast-reid keeps it in a Sequential)."""

    def __init__(self, channels: int, pool: str = "avg"):
        super().__init__()
        if pool not in FASTREID_POOLS:
            raise ValueError(f"pool must be one of {FASTREID_POOLS}, got {pool!r}")
        # fast-reid's GeneralizedMeanPoolingP is GeM with a learnable p (key heads.pool_layer.p).
        self.pool_layer = GeMPooling(3.0) if pool == "gem" else nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                                                               nn.Flatten())
        # fast-reid applies a BatchNorm2d to the [B, C, 1, 1] pooled map; BatchNorm1d on [B, C] is the
        # same computation with the same parameters.
        self.bottleneck = nn.Sequential(nn.BatchNorm1d(channels))
        self.bottleneck[0].bias.requires_grad_(False)


class FastReIDBoT(ReIDBackbone):
    """fast-reid's bagtricks Baseline: ``backbone`` (ResNet-50) and ``heads`` (pooling + BNNeck).

    Feature layers: "bnneck" (default; fast-reid's eval-mode output) and "pool" (before the BNNeck).
    ``ibn`` gives bagtricks_R50-ibn. ``stem_pool_kind`` is "ceil" for fast-reid since 2020-11-06 and
    "padded" before (see resnet.STEM_POOLS). ``num_classes`` > 0 adds the identity classifier (Linear
    without bias; fast-reid names it heads.weight or heads.classifier.weight).
    """

    default_feature_layer = "bnneck"

    def __init__(self, *, num_classes: int = 0, ibn: bool = False, last_stride: int = 1, pool: str = "avg",
                 stem_pool_kind: str = "ceil"):
        super().__init__()
        self.backbone = ResNet50(last_stride=last_stride, ibn=ibn, stem_pool_kind=stem_pool_kind)
        self.heads = BNNeckHead(RESNET50_DIM, pool)
        self.classifier = nn.Linear(RESNET50_DIM, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        self.feature_dims = {"bnneck": RESNET50_DIM, "pool": RESNET50_DIM}

    def construction_options(self) -> dict[str, object]:
        return self.backbone.construction_options()

    def features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        self.check_feature_layer(layer)
        pooled = self.heads.pool_layer(self.backbone.feature_maps(x))
        return pooled if layer == "pool" else self.heads.bottleneck(pooled)


# fast-reid's key names across its history -> ours. Read from JDAI-CV/fast-reid:
#   heads.bnneck.*            BNneckHead (configs' HEADS.NAME until commit 4d573b8, 2020-09-10; v0.1.1's
#                             model-zoo files, e.g. market_bot_R50.pth, still use it: issues #453, #486)
#   heads.bottleneck.0.*      EmbeddingHead since 4d573b8 (ours)
#   heads.classifier.weight   identity classifier until commit 883fd4a (2021-03-23; v1.0.0 has it)
#   heads.weight              identity classifier since 883fd4a (v1.2, v1.3, master)
_RENAMED_PREFIXES = (("heads.bnneck.", "heads.bottleneck.0."),)
_CLASSIFIER_KEYS = {"heads.classifier.weight": "classifier.weight", "heads.weight": "classifier.weight"}
# Buffers of fast-reid's Baseline (0-255 scale) saved in checkpoints from 2020-05-25 until commit 883fd4a
# made them non-persistent; they are preprocessing facts, not weights.
PIXEL_BUFFERS = ("pixel_mean", "pixel_std")
OLD_HEAD_PREFIX = "heads.bnneck."


def fastreid_to_zoo_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A fast-reid state dict with our key names (pixel buffers removed; other keys unchanged)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in PIXEL_BUFFERS:
            continue
        key = _CLASSIFIER_KEYS.get(key, key)
        for old, new in _RENAMED_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
        out[key] = value
    return out
