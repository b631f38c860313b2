"""The arguments of the fused step as two structures: ``StepFlags`` (what one step does to each image: the
schedule's output) and ``BatchConstants`` (what stays fixed for a batch).

Everything above the backends passes these two (``ops.fade_step_``, the engine's loop, the ablations); the
backends (``reference.fade_step_``, the C++ schema ``pixelfade::fade_step_``, the Triton op) take the fifteen
arguments flat, in the order ``flat_step_args`` writes here once. A leaf module (it imports only ``op_checks``),
so the ops, the schedules and the engine all share it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .op_checks import check_step_args


@dataclass
class StepFlags:
    """What one fused step does to each image: the arguments of ``fade_step_`` that vary per step, and the
    phase (a 0-dim int32 code, see ``schedules.PHASE_NAMES``) of the step they were made for (None outside the
    engine's loop: the step does not read it)."""

    do_co: torch.Tensor  # bool [B]
    do_pro: torch.Tensor  # bool [B]
    beta: torch.Tensor  # float32 [B]
    mask_idx: torch.Tensor  # int32 [B]
    phase: torch.Tensor | None = None  # int32 []


@dataclass(frozen=True)
class BatchConstants:
    """The arguments of ``fade_step_`` that stay fixed for a batch: keys, clamp bounds, the config's step
    settings and the materialised mask ids."""

    keys: torch.Tensor  # int64 [B, 4] (reference.derive_keys)
    lo: torch.Tensor  # float32 [C]
    hi: torch.Tensor  # float32 [C]
    alpha: float
    num_masks: int
    norm: str = "l1mean"
    pixel_masks: bool = False
    mask_ids: torch.Tensor | None = None  # uint8 [B, C, H, W] (fade_mask_ids), or None to draw them in the step

    @classmethod
    def of(cls, config, keys: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
           mask_ids: torch.Tensor | None = None) -> BatchConstants:
        """The constants of a batch protected with ``config`` (a ``FadeConfig``: its alpha, num_masks, norm and
        pixel_masks)."""
        return cls(keys, lo, hi, float(config.alpha), int(config.num_masks), config.norm, bool(config.pixel_masks),
                   mask_ids)


def flat_step_args(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, flags: StepFlags,
                   constants: BatchConstants) -> tuple:
    """The fifteen arguments of a backend's ``fade_step_``, in its order."""
    return (xp, mom, grad, flags.do_co, flags.do_pro, flags.beta, flags.mask_idx, constants.keys, constants.lo,
            constants.hi, float(constants.alpha), int(constants.num_masks), constants.norm,
            bool(constants.pixel_masks), constants.mask_ids)


def check_step(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, flags: StepFlags,
               constants: BatchConstants) -> None:
    """``op_checks.check_step_args`` on the step's structures: a bad field fails naming it."""
    if not isinstance(flags, StepFlags):
        raise TypeError(f"flags must be a StepFlags, got {type(flags).__name__}")
    if not isinstance(constants, BatchConstants):
        raise TypeError(f"constants must be a BatchConstants, got {type(constants).__name__}")
    check_step_args(*flat_step_args(xp, mom, grad, flags, constants))
