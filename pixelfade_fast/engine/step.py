"""The fused step as the loop calls it: per-step flags and per-batch constants, unpacked only at the op call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import ops
from ..config import FadeConfig
from ..op_checks import check_step_args
from ..schedules import StepFlags


@dataclass(frozen=True)
class BatchConstants:
    """The arguments of ``fade_step_`` that stay fixed for a batch: keys, clamp bounds, materialised mask ids
    and the config's step settings."""

    keys: torch.Tensor  # int64 [B, 4] (reference.derive_keys)
    lo: torch.Tensor  # float32 [C]
    hi: torch.Tensor  # float32 [C]
    mask_ids: torch.Tensor | None  # uint8 [B, C, H, W], or None to draw them in the step
    alpha: float
    num_masks: int
    norm: str
    pixel_masks: bool

    @classmethod
    def of(cls, config: FadeConfig, keys: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
           mask_ids: torch.Tensor | None) -> BatchConstants:
        return cls(keys, lo, hi, mask_ids, float(config.alpha), int(config.num_masks), config.norm,
                   bool(config.pixel_masks))


# step(xp, mom, grad, flags, constants): one PixelFade step in place on xp and mom.
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, StepFlags, BatchConstants], None]


def check_step(xp: torch.Tensor, mom: torch.Tensor, flags: StepFlags, constants: BatchConstants) -> None:
    """The checks every ``fade_step_`` call would make, once for a loop's fixed buffers."""
    check_step_args(xp, mom, xp, flags.do_co, flags.do_pro, flags.beta, flags.mask_idx, constants.keys,
                    constants.lo, constants.hi, constants.alpha, constants.num_masks, constants.norm,
                    constants.mask_ids)


def fused_step(backend: str, device: torch.device) -> StepFn:
    """The fused ``fade_step_`` of ``backend`` (resolved here, once) in the loop's calling form."""
    op = ops.resolve_op("fade_step_", backend, device)

    def step(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, flags: StepFlags,
             constants: BatchConstants) -> None:
        op(xp, mom, grad, flags.do_co, flags.do_pro, flags.beta, flags.mask_idx, constants.keys, constants.lo,
           constants.hi, constants.alpha, constants.num_masks, constants.norm, constants.pixel_masks,
           constants.mask_ids)

    return step
