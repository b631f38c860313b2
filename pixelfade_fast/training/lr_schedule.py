"""Learning rate per epoch: linear warm-up, then a cosine or step decay."""
from __future__ import annotations

import math
from collections.abc import Sequence

SCHEDULES = ("cosine", "step")


def learning_rate(epoch: int, base_lr: float, epochs: int, *, warmup_epochs: int = 0,
                  schedule: str = "cosine", milestones: Sequence[int] = (), gamma: float = 0.1,
                  final_fraction: float = 0.01) -> float:
    """The learning rate of 0-based ``epoch`` out of ``epochs``.

    Warm-up: epochs 0..warmup_epochs-1 rise linearly from base_lr/warmup_epochs to base_lr.
    After it, "cosine" decays from base_lr to final_fraction*base_lr at the last epoch, and "step"
    multiplies base_lr by gamma once for each milestone epoch already reached.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in [0, {epochs}), got {epoch}")
    if epoch < warmup_epochs:
        return base_lr * (epoch + 1) / warmup_epochs
    if schedule == "step":
        return base_lr * gamma ** sum(epoch >= m for m in milestones)
    decay_epochs = epochs - warmup_epochs - 1
    progress = (epoch - warmup_epochs) / decay_epochs if decay_epochs > 0 else 1.0
    return base_lr * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))
