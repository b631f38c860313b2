"""Where the two training losses attach to each backbone of the zoo.

As in the "bag of tricks" baseline (Luo et al., 2019), the triplet loss acts on the pooled feature and
the identity classifier reads the embedding computed from it (OSNet/OSNet-AIN/TinyCNN: the fc layer;
AGW and fast-reid's BoT: the BNNeck). With the triplet loss on OSNet's fc output (after its ReLU) instead, training from scratch
collapses: the embedding goes to zero, every distance is 0 and the triplet loss sits at its margin.
"""
from __future__ import annotations

from operator import attrgetter

import torch

from ..models import AGW, FastReIDBoT, OSNet, OSNetAIN, ReIDBackbone, TinyCNN

# backbone type -> (feature layer of the triplet loss, module (dotted attribute path) mapping that feature
# to the classifier input)
TRAINING_HEADS: dict[type, tuple[str, str]] = {OSNet: ("pool", "fc"), OSNetAIN: ("pool", "fc"),
                                               TinyCNN: ("pool", "fc"), AGW: ("gem", "bottleneck"),
                                               FastReIDBoT: ("pool", "heads.bottleneck")}


def training_outputs(backbone: ReIDBackbone, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features for the triplet loss [B, D], identity logits [B, C]) of a batch, in one forward pass.

    A backbone not listed in TRAINING_HEADS uses its default feature layer for both losses.
    """
    if backbone.classifier is None:
        raise ValueError(f"{type(backbone).__name__} has no classifier: build it with num_classes > 0 to train it")
    for kind, (layer, head) in TRAINING_HEADS.items():
        if isinstance(backbone, kind):
            pooled = backbone.features(x, layer)
            return pooled, backbone.classifier(attrgetter(head)(backbone)(pooled))
    features = backbone.features(x, backbone.default_feature_layer)
    return features, backbone.classifier(features)
