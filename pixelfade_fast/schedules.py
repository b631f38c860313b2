"""Schedules: per-step CO/PRO flags from the losses, as small device-side tensor ops.

The step counter ``t`` is a host integer (the loop's own count), so branching on it costs no device read;
every decision that depends on a loss stays a tensor. That keeps the loop free of host synchronisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import FadeConfig


@dataclass
class StepFlags:
    """What one fused step does to each image: the arguments of ``fade_step_`` that vary per step."""

    do_co: torch.Tensor  # bool [B]
    do_pro: torch.Tensor  # bool [B]
    beta: torch.Tensor  # float32 [B]
    mask_idx: torch.Tensor  # int32 [B]


class Schedule:
    """Holds the per-image mask cursor j_i and turns (loss, t) into StepFlags."""

    def __init__(self, config: FadeConfig, batch: int, device: torch.device) -> None:
        self.config = config
        self.batch = batch
        self.device = device
        self.mask_cursor = torch.zeros(batch, dtype=torch.int32, device=device)
        self._all = torch.ones(batch, dtype=torch.bool, device=device)
        self._none = torch.zeros(batch, dtype=torch.bool, device=device)

    def phase(self, t: int) -> str:
        """'init', 'main', 'final' (CO only) or 'finish' (CO only, images still above ε) for step t."""
        cfg = self.config
        if t >= cfg.steps:
            return "finish"
        if t < cfg.init_steps:
            return "init"
        if t >= cfg.steps - cfg.final_steps:
            return "final"
        return "main"

    def flags(self, loss: torch.Tensor, t: int) -> StepFlags:
        """Flags for step t given the per-image losses [B] measured before the update; advances the cursor."""
        if self.config.schedule == "paper":
            return self._paper(loss, t)
        return self._released(loss, t)

    def _paper(self, loss: torch.Tensor, t: int) -> StepFlags:
        cfg = self.config
        phase = self.phase(t)
        above = loss >= cfg.epsilon
        if phase == "init":
            do_co, do_pro = self._all, self._all
        elif phase == "main":
            do_co, do_pro = above, ~above
        elif phase == "final":
            do_co, do_pro = self._all, self._none
        else:
            do_co, do_pro = above, self._none
        beta = torch.full((self.batch,), cfg.beta, dtype=torch.float32, device=self.device)
        mask_idx = self.mask_cursor.clone()
        self.mask_cursor = torch.remainder(self.mask_cursor + do_pro.to(torch.int32), cfg.num_masks)
        return StepFlags(do_co, do_pro, beta, mask_idx)

    def _released(self, loss: torch.Tensor, t: int) -> StepFlags:
        """The authors' released loop, one decision for the whole batch from the batch-mean loss.

        Their replacement runs at the start of the next step; here it is folded into the end of this one, which
        is the same image at the next loss measurement. The mask index is the step number mod I.
        """
        cfg = self.config
        phase = self.phase(t)
        if phase == "finish":
            above = loss >= cfg.epsilon
            beta = torch.full((self.batch,), cfg.beta_unsat, dtype=torch.float32, device=self.device)
            mask_idx = torch.full((self.batch,), t % cfg.num_masks, dtype=torch.int32, device=self.device)
            return StepFlags(above, self._none, beta, mask_idx)
        satisfied = (loss.mean() < cfg.epsilon) & (t < cfg.steps - cfg.final_steps)
        satisfied = satisfied.expand(self.batch)
        beta = torch.where(satisfied, cfg.beta, cfg.beta_unsat).to(torch.float32)
        do_pro = satisfied | (t < cfg.init_steps)
        mask_idx = torch.full((self.batch,), t % cfg.num_masks, dtype=torch.int32, device=self.device)
        return StepFlags(self._all, do_pro.contiguous(), beta.contiguous(), mask_idx)
