"""The PixelFade loop of one batch shape, on static buffers.

``FadeLoop`` owns every tensor a step touches (xᵖ, momentum, targets, keys, clamp bounds, mask ids and the
schedule's state, with its device step counter), so a step is the same sequence of kernels on the same memory
whatever its number: a CUDA graph captured once replays every step of every batch of this shape
(``graph.CapturedStep``). Nothing in a step reads a device value on the host.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import FadeConfig
from ..input_space import InputSpace
from ..reference.rng import KEY_WORDS
from ..schedules import FINAL, FINISH, Schedule
from ..step_args import BatchConstants, StepFlags, check_step
from .features import FeatureFn, nvtx_range, per_image_loss
from .step import StepFn


@dataclass
class StepRecord:
    """What an observer sees after each step: the step number, the per-image losses measured before the
    update, and the flags the step ran with (device tensors that the next step overwrites: clone to keep).
    ``rows``: which images of the batch they are, once the finish phase runs on a compacted batch (None: all,
    in batch order; compacted batches may repeat a row as padding)."""

    step: int
    loss: torch.Tensor
    flags: StepFlags
    rows: torch.Tensor | None = None


Observer = Callable[[StepRecord], None]


class FadeLoop:
    """Static buffers and one step of PixelFade for batches of ``shape`` [B, C, H, W]. ``quantise_in``: the
    input space whose 8-bit grid the closing steps round to (None: no rounding). ``stored``: x -> x as the
    storage codec returns it (differentiable); every step measures the loss there, so each decision of the
    schedule judges the image as it will be stored (None: at x itself)."""

    def __init__(self, features: FeatureFn, config: FadeConfig, shape: tuple[int, int, int, int],
                 device: torch.device, step: StepFn, quantise_in: InputSpace | None = None,
                 stored: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.features = features
        self.stored = stored
        self.config = config
        self.shape = tuple(shape)
        self.device = torch.device(device)
        self.step_fn = step
        self.quantise_in = quantise_in
        if quantise_in is not None:
            quantise_in.constants(self.device)  # made now: a captured step must not copy from the host
        batch, channels = self.shape[0], self.shape[1]
        self.xp = torch.empty(self.shape, dtype=torch.float32, device=self.device)
        self.mom = torch.zeros_like(self.xp)
        self.target: torch.Tensor | None = None  # [B, D], allocated by the first load
        self.constants = BatchConstants.of(
            config, torch.empty(batch, KEY_WORDS, dtype=torch.int64, device=self.device),
            torch.empty(channels, dtype=torch.float32, device=self.device),
            torch.empty(channels, dtype=torch.float32, device=self.device),
            torch.empty(self.shape, dtype=torch.uint8, device=self.device))
        self.schedule = Schedule(config, batch, self.device)
        check_step(self.xp, self.mom, self.xp, self.schedule.step_flags(torch.zeros(batch, device=self.device)),
                   self.constants)
        self.schedule.reset()

    def load(self, x: torch.Tensor, target: torch.Tensor, keys: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
             mask_ids: torch.Tensor, epsilon: torch.Tensor) -> None:
        """Copy a batch into the static buffers and reset the momentum and the schedule (with the batch's ε_i)."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"this loop runs batches of shape {list(self.shape)}, got {list(x.shape)}")
        if self.target is None or self.target.shape != target.shape:
            self.target = torch.empty(target.shape, dtype=torch.float32, device=self.device)
        self.xp.copy_(x)
        self.mom.zero_()
        self.target.copy_(target)
        self.constants.keys.copy_(keys)
        self.constants.lo.copy_(lo)
        self.constants.hi.copy_(hi)
        self.constants.mask_ids.copy_(mask_ids)
        self.schedule.reset(epsilon)

    def adopt(self, parent: FadeLoop, rows: torch.Tensor, step: int) -> None:
        """Continue images ``rows`` of ``parent`` (a loop of the same image shape) from its step ``step``: their
        images, momentum, targets, constants and schedule state, into this (smaller) loop's buffers."""
        if self.target is None or self.target.shape[1:] != parent.target.shape[1:]:
            self.target = torch.empty((self.shape[0],) + tuple(parent.target.shape[1:]), dtype=torch.float32,
                                      device=self.device)
        self.xp.copy_(parent.xp.index_select(0, rows))
        self.mom.copy_(parent.mom.index_select(0, rows))
        self.target.copy_(parent.target.index_select(0, rows))
        self.constants.keys.copy_(parent.constants.keys.index_select(0, rows))
        self.constants.lo.copy_(parent.constants.lo)
        self.constants.hi.copy_(parent.constants.hi)
        self.constants.mask_ids.copy_(parent.constants.mask_ids.index_select(0, rows))
        self.schedule.adopt(parent.schedule, rows, step)

    def step(self) -> tuple[torch.Tensor, StepFlags]:
        """One step in place: loss and gradient at xᵖ, the schedule's flags, the fused step (and rounding to the
        8-bit grid in the CO-only closing steps when the config quantises). Returns (loss, flags)."""
        on_cuda = self.device.type == "cuda"
        with nvtx_range("forward", on_cuda):
            leaf = self.xp.detach().requires_grad_(True)
            seen = leaf if self.stored is None else self.stored(leaf)
            loss = per_image_loss(self.features(seen), self.target)
        with nvtx_range("backward", on_cuda):
            (grad,) = torch.autograd.grad(loss.sum(), leaf)
        loss = loss.detach()
        flags = self.schedule.step_flags(loss)
        with nvtx_range("fade_step", on_cuda), torch.no_grad():
            self.step_fn(self.xp, self.mom, grad.contiguous(), flags, self.constants)
            if self.quantise_in is not None:
                closing = (flags.phase == FINAL) | (flags.phase == FINISH)
                self.xp.copy_(torch.where(closing, self.quantise_in.quantised(self.xp), self.xp))
        return loss, flags
