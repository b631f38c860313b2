"""Schedules: per-step CO/PRO flags from the losses, as small device-side tensor ops.

The step counter lives on the device and indexes a per-step phase table, so every step runs the same ops on
the same buffers whatever its number: one captured CUDA graph replays for every step, and nothing here ever
reads a device value on the host.
"""
from __future__ import annotations

import torch

from .config import FadeConfig
from .step_args import StepFlags

# Phase codes of the phase table.
INIT, MAIN, FINAL, FINISH = 0, 1, 2, 3
PHASE_NAMES = ("init", "main", "final", "finish")


def phase_of_step(config: FadeConfig, t: int) -> int:
    """The phase code of step t: init (CO+PRO), main (per-image decision), final (CO only), finish (CO only,
    the images still above ε)."""
    if t >= config.steps:
        return FINISH
    if t < config.init_steps:
        return INIT
    if t >= config.steps - config.final_steps:
        return FINAL
    return MAIN


# β_i after a CO-only step that raised L_i by more than FadeConfig.rise_tolerance, and after any other (never above
# beta_max_factor·β). With momentum the loss also rises a little now and then at a good step size: judged by every
# rise, β_i decayed to a tenth of β on slowly converging images and they stalled above ε. A 5% tolerance took a
# CUHK01 128x64 model from 94.8% to 100% met and SynthPed images from 88.7% to 98.8%; 10% met 100% of both but
# kept less mAP on the bundled model (0.941), 20% missed again (docs/results/constraint.md). A mild shrink keeps
# one real rise from costing many steps.
BACKTRACK_SHRINK = 0.8
BACKTRACK_GROW = 1.05


class Schedule:
    """The per-image state of a schedule (ε_i, mask cursor j_i, CO-only step size β_i, device step counter) and
    its decision rule.

    ``step_flags(loss)`` turns the per-image losses [B] measured at the current images into the flags of the
    current step, then advances the state, all in place on the device. ``reset(epsilon)`` starts a new batch.
    """

    def __init__(self, config: FadeConfig, batch: int, device: torch.device) -> None:
        self.config = config
        self.batch = batch
        self.device = torch.device(device)
        phases = [phase_of_step(config, t) for t in range(config.total_steps)]
        self.phase_table = torch.tensor(phases, dtype=torch.int32, device=self.device)
        self.step = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.mask_cursor = torch.zeros(batch, dtype=torch.int32, device=self.device)
        self.epsilon = torch.full((batch,), config.epsilon, dtype=torch.float32, device=self.device)
        self._beta = torch.full((batch,), config.beta, dtype=torch.float32, device=self.device)
        self._beta_unsat = torch.full((batch,), config.beta_unsat, dtype=torch.float32, device=self.device)
        self._beta_max = torch.full((batch,), config.beta * config.beta_max_factor, dtype=torch.float32,
                                    device=self.device)
        self.co_beta = self._beta.clone()  # β_i of the CO-only steps (backtracking)
        self.previous_loss = torch.zeros(batch, dtype=torch.float32, device=self.device)
        self.stepped = torch.zeros(batch, dtype=torch.bool, device=self.device)  # took a CO-only step last

    def reset(self, epsilon: torch.Tensor | None = None) -> None:
        """Back to step 0 for a new batch, with its per-image ε [B] (default: the config's ε); in place, so a
        captured graph keeps its buffers."""
        self.step.zero_()
        self.mask_cursor.zero_()
        self.epsilon.copy_(epsilon if epsilon is not None else self.config.epsilon)
        self.co_beta.copy_(self._beta)
        self.stepped.zero_()

    def adopt(self, parent: Schedule, rows: torch.Tensor, step: int) -> None:
        """The state of images ``rows`` of ``parent`` at step ``step`` (a compacted batch continuing them)."""
        self.step.fill_(step)
        for name in ("mask_cursor", "epsilon", "co_beta", "previous_loss", "stepped"):
            getattr(self, name).copy_(getattr(parent, name).index_select(0, rows))

    def current_phase(self) -> torch.Tensor:
        """The phase code of the current step, int32 [] (clamped to the last step past the end)."""
        index = self.step.clamp(max=self.phase_table.numel() - 1)
        return self.phase_table.index_select(0, index).reshape(())

    def step_flags(self, loss: torch.Tensor) -> StepFlags:
        """Flags of the current step given the per-image losses [B]; advances the cursor and the step counter."""
        phase = self.current_phase()
        if self.config.schedule == "paper":
            flags = self._paper(loss, phase)
        else:
            flags = self._released(loss, phase)
        self.step.add_(1)
        return flags

    def _paper(self, loss: torch.Tensor, phase: torch.Tensor) -> StepFlags:
        above = loss >= self.epsilon
        every = (phase == INIT) | (phase == FINAL)
        decides = (phase == MAIN) | (phase == FINISH)
        do_co = every | (decides & above)
        do_pro = (phase == INIT) | ((phase == MAIN) & ~above)
        mask_idx = self.mask_cursor.clone()
        self.mask_cursor.copy_(torch.remainder(self.mask_cursor + do_pro.to(torch.int32), self.config.num_masks))
        beta = self._beta
        if self.config.co_step == "backtrack":
            beta = self._backtrack(loss, do_co & ~do_pro)
        return StepFlags(do_co, do_pro, beta, mask_idx, phase)

    def _backtrack(self, loss: torch.Tensor, co_only: torch.Tensor) -> torch.Tensor:
        """β_i of this step. A CO-only step (main phase above ε, final, finish) moves the image by the CO update
        alone, so the next loss judges it: shrink β_i when L_i rose by more than the tolerance, else grow it (up to
        beta_max_factor·β). Steps that also replace (PRO) use the fixed β and are not judged: the replacement moves
        L_i as well."""
        rose = loss > self.previous_loss * (1.0 + self.config.rise_tolerance)
        adjusted = torch.where(rose, self.co_beta * BACKTRACK_SHRINK,
                               torch.minimum(self.co_beta * BACKTRACK_GROW, self._beta_max))
        self.co_beta.copy_(torch.where(self.stepped, adjusted, self.co_beta))
        self.previous_loss.copy_(loss)
        self.stepped.copy_(co_only)
        return torch.where(co_only, self.co_beta, self._beta)

    def _released(self, loss: torch.Tensor, phase: torch.Tensor) -> StepFlags:
        """The authors' released loop, one decision for the whole batch from the batch-mean loss.

        Their replacement runs at the start of the next step; here it is folded into the end of this one, which
        is the same image at the next loss measurement. The mask index is the step number mod I. In the finish
        phase (ours, not theirs) the images still above ε take CO steps with β_unsat.
        """
        cfg = self.config
        finish = phase == FINISH
        satisfied = (loss.mean() < self.epsilon.mean()) & ((phase == INIT) | (phase == MAIN))
        do_co = torch.where(finish, loss >= self.epsilon, True)
        do_pro = ((satisfied | (phase == INIT)) & ~finish).expand(self.batch)
        beta = torch.where(satisfied & ~finish, self._beta, self._beta_unsat)
        mask_idx = torch.remainder(self.step, cfg.num_masks).to(torch.int32).expand(self.batch)
        return StepFlags(do_co, do_pro.contiguous(), beta, mask_idx.contiguous(), phase)
