"""The fused step as the loop calls it: ``step(xp, mom, grad, flags, constants)`` with the structures of
``pixelfade_fast.step_args``, flattened only at the backend's op."""
from __future__ import annotations

from typing import Callable

import torch

from .. import ops
from ..step_args import BatchConstants, StepFlags, flat_step_args

# step(xp, mom, grad, flags, constants): one PixelFade step in place on xp and mom.
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, StepFlags, BatchConstants], None]


def fused_step(backend: str, device: torch.device) -> StepFn:
    """The fused ``fade_step_`` of ``backend`` (resolved here, once) in the loop's calling form, without the
    argument checks that the loop makes once for its fixed buffers (``step_args.check_step``)."""
    op = ops.resolve_op("fade_step_", backend, device)

    def step(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, flags: StepFlags,
             constants: BatchConstants) -> None:
        op(*flat_step_args(xp, mom, grad, flags, constants))

    return step
