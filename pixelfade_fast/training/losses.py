"""Training losses of the Re-ID baseline: label-smoothed softmax cross-entropy and batch-hard triplet."""
from __future__ import annotations

import torch


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs (autocast) are promoted; float64 stays float64."""
    return x if x.dtype == torch.float64 else x.float()


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy of logits [B, C] against a target that puts 1 - smoothing on the true class
    and spreads `smoothing` evenly over all C classes (Szegedy et al., 2016; Luo et al., 2019)."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [B, C] and labels [B], "
                         f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
    log_probs = torch.log_softmax(_at_least_float32(logits), dim=1)
    true_class = -log_probs.gather(1, labels.long()[:, None]).squeeze(1)
    uniform = -log_probs.mean(dim=1)
    return ((1.0 - smoothing) * true_class + smoothing * uniform).mean()


def pairwise_distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [B, B] between the rows of features [B, D]. The squared distance is clamped
    away from 0 before the square root, so the gradient stays finite on the diagonal."""
    squared = features.pow(2).sum(1)
    dist_sq = squared[:, None] + squared[None, :] - 2.0 * features @ features.T
    return dist_sq.clamp_min(1e-12).sqrt()


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al., 2017): for each anchor, the farthest image of its own
    identity and the closest image of another identity, loss = mean(max(0, d_pos - d_neg + margin)).

    Every anchor needs at least one other image of its identity and one image of another identity
    (a PK batch with K >= 2 and P >= 2 guarantees both).
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"expected features [B, D] and labels [B], "
                         f"got {tuple(features.shape)} and {tuple(labels.shape)}")
    dist = pairwise_distances(_at_least_float32(features))
    same = labels[:, None] == labels[None, :]
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(1)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(1)
    return torch.relu(hardest_positive - hardest_negative + margin).mean()
