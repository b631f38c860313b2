"""PixelFade ablations of the paper (Table 3, Table 4, Fig. 4) on the engine's own loop.

Each variant runs the engine's own loop (``Protector.run`` under ``Protector.protect_all``: the same set-up,
Schedule, per-image loss and batching as ``protect``) with a different step function written in plain torch ops:
  - ``fade_towards``: PRO replaces the masked elements with a given objective image instead of η. With the
    objective η it *is* PixelFade (tests check it against ``protect`` with the reference backend); the
    other-identity, zero, contrastive and noise-interpolation objectives derive from it.
  - ``random_perturb``: where the schedule would replace, add fresh Gaussian noise of amplitude a instead.
  - ``l1_to_noise``: no replacement; every step is a CO step on L_f + w·mean|x^p - η|.
All work in the model's normalised space, like PixelFade; inputs and outputs are pixels in [0, 1]. ``methods.py``
registers the paper's settings of each for the suite.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Sequence

import torch
from torch import nn

from ..config import FadeConfig
from ..engine import BatchSetup, Protector, check_batch_size, check_images, check_uids
from ..reference import derive_keys, fade_noise
from ..reference.ops import clamp_channels, constraint_step
from ..reference.rng import splitmix64_int
from ..step_args import BatchConstants, StepFlags

# make_step(batch, setup, mean, std) -> the step function the loop calls once per step on this batch
# (batch: the batch's slice of the image set; setup: the engine's set-up of it; mean/std: [1, C, 1, 1])
StepFactory = Callable[..., Callable[..., None]]
# objective(batch, pixels, x, keys, mean, std) -> the batch's objective image in normalised space
ObjectiveFn = Callable[..., torch.Tensor]
SPACES = ("pixel", "normalised")


def _per_image(x: torch.Tensor) -> tuple[int, ...]:
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def _constraint_op_(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor, beta: torch.Tensor,
                   alpha: float, norm: str) -> None:
    """CO in place, reference.ops.constraint_step's."""
    new_mom, stepped = constraint_step(xp, mom, grad, do_co, beta, alpha, norm)
    mom.copy_(new_mom)
    xp.copy_(stepped)


def _clamp_(xp: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
    """Per-channel clamp to [lo_c, hi_c] in place."""
    xp.copy_(clamp_channels(xp, lo, hi))


def _run(model: nn.Module, images: torch.Tensor, config: FadeConfig | None, seed: int,
         uids: Sequence[int] | None, batch_size: int | None, make_step: StepFactory) -> torch.Tensor:
    """``protect``'s batch driver and set-up, with the step that ``make_step`` builds for each batch."""
    config = config or FadeConfig()
    check_images(images, model)
    check_batch_size(batch_size)
    keys = derive_keys(int(seed), check_uids(uids, images.shape[0])).to(images.device)
    with Protector(model, config, backend="reference") as protector:
        mean, std = protector.space.constants(protector.device)

        def run_batch(rows: slice, setup: BatchSetup) -> tuple[torch.Tensor, torch.Tensor]:
            xp, final_loss = protector.run(setup, step=make_step(rows, setup, mean, std))
            return protector.space.to_pixels(xp), final_loss

        protected = protector.protect_all(images, keys, batch_size, run_batch=run_batch).pixels
    return protected.to(images.dtype)


def _fade_objective(model, images, objective: ObjectiveFn, config, seed, uids, batch_size) -> torch.Tensor:
    def make_step(batch, setup: BatchSetup, mean, std):
        goal = objective(batch, setup.pixels, setup.x, setup.keys, mean, std).to(setup.x.dtype).expand_as(setup.x)

        def step(xp, mom, grad, flags: StepFlags, constants: BatchConstants):
            _constraint_op_(xp, mom, grad, flags.do_co, flags.beta, constants.alpha, constants.norm)
            per_image = _per_image(xp)
            chosen = constants.mask_ids.to(torch.int32) == flags.mask_idx.reshape(per_image)
            xp.copy_(torch.where(flags.do_pro.reshape(per_image) & chosen, goal, xp))
            _clamp_(xp, constants.lo, constants.hi)
        return step

    return _run(model, images, config, seed, uids, batch_size, make_step)


def fade_towards(model: nn.Module, images: torch.Tensor, objective: torch.Tensor, config: FadeConfig | None = None,
                 seed: int = 0, *, space: str = "pixel", uids: Sequence[int] | None = None,
                 batch_size: int | None = None) -> torch.Tensor:
    """PixelFade whose PRO writes ``objective`` (same shape as images) into the masked elements instead of η.

    space: "pixel" (objective in pixel units; values outside [0, 1] are allowed, the step's clamp applies as
    for η) or "normalised" (the model's input space, where η lives). seed and uids fix the masks exactly as in
    ``protect``, so ``fade_towards(m, x, fade_noise(keys, ...), space="normalised")`` equals ``protect``.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if not isinstance(objective, torch.Tensor) or objective.shape != images.shape:
        got = list(objective.shape) if isinstance(objective, torch.Tensor) else type(objective).__name__
        raise ValueError(f"objective must be a tensor of the images' shape {list(images.shape)}, got {got}")
    objective = objective.to(images.device, torch.float32)

    def batch_objective(batch, pixels, x, keys, mean, std):
        return objective[batch] if space == "normalised" else (objective[batch] - mean) / std

    return _fade_objective(model, images, batch_objective, config, seed, uids, batch_size)


def objective_other_identity(model, images, config=None, seed=0, *, uids=None, batch_size=None) -> torch.Tensor:
    """Table 4 "images of other identity": the objective of image i is image i-1 of the set (rolled by one);
    order the set so that neighbours are different people."""
    return fade_towards(model, images, images.roll(1, dims=0), config, seed, uids=uids, batch_size=batch_size)


def _black(batch, pixels, x, keys, mean, std):
    return -mean / std


def objective_zeros(model, images, config=None, seed=0, *, uids=None, batch_size=None) -> torch.Tensor:
    """Table 4 "zero images": the objective is the black image (zero pixels)."""
    return _fade_objective(model, images, _black, config, seed, uids, batch_size)


def _far_corner(batch, pixels, x, keys, mean, std):
    return ((pixels < 0.5).to(pixels.dtype) - mean) / std


def objective_contrastive(model, images, config=None, seed=0, *, uids=None, batch_size=None) -> torch.Tensor:
    """Table 4 "contrastive" (Eq. 7, max ||x^p - x||): the objective is the valid image farthest from x, i.e.
    per element the far end of [0, 1] (1 where the pixel is below 0.5, else 0)."""
    return _fade_objective(model, images, _far_corner, config, seed, uids, batch_size)


def noise_interpolation(model, images, weight: float, config=None, seed=0, *, uids=None,
                        batch_size=None) -> torch.Tensor:
    """Table 3: the objective is (1 - w)·x + w·η in normalised space (w = 1 is PixelFade itself)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")

    def mixed(batch, pixels, x, keys, mean, std):
        return (1.0 - weight) * x + weight * fade_noise(keys, x.shape[1:])

    return _fade_objective(model, images, mixed, config, seed, uids, batch_size)


def _step_key(t: int) -> int:
    """An int64 constant per step, XORed into the keys so each step draws a fresh, keyed noise image."""
    value = splitmix64_int(0x5EED0000 + t)
    return value - (1 << 64) if value >= 1 << 63 else value


def random_perturb(model, images, amplitude: float, config=None, seed=0, *, uids=None, batch_size=None) -> torch.Tensor:
    """Fig. 4 left: CO as in PixelFade, but where the schedule would replace, add a·ξ (ξ fresh N(0, 1) noise
    per step, keyed by seed/uid/step, in normalised space) to the image instead."""
    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)) or not amplitude >= 0:
        raise ValueError(f"amplitude must be a non-negative number, got {amplitude!r}")

    def make_step(batch, setup: BatchSetup, mean, std):
        steps = itertools.count()

        def step(xp, mom, grad, flags: StepFlags, constants: BatchConstants):
            _constraint_op_(xp, mom, grad, flags.do_co, flags.beta, constants.alpha, constants.norm)
            keys = torch.bitwise_xor(constants.keys, _step_key(next(steps)))
            noise = fade_noise(keys, xp.shape[1:]).to(xp.dtype)
            xp.copy_(torch.where(flags.do_pro.reshape(_per_image(xp)), xp + amplitude * noise, xp))
            _clamp_(xp, constants.lo, constants.hi)
        return step

    return _run(model, images, config, seed, uids, batch_size, make_step)


def l1_to_noise(model, images, weight: float, config=None, seed=0, *, uids=None, batch_size=None) -> torch.Tensor:
    """Fig. 4 right: no replacement; every step is a CO step on L_f + w·mean_e |x^p - η| (η from seed/uid), the
    L1 gradient w·sign(x^p - η)/n added to the feature gradient. The schedule's CO/PRO decisions are unused, and
    its step size is the fixed β: backtracking judges a step by L_f alone, not by this objective."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"weight must be a non-negative number, got {weight!r}")
    config = dataclasses.replace(config or FadeConfig(), co_step="fixed")

    def make_step(batch, setup: BatchSetup, mean, std):
        eta = fade_noise(setup.keys, setup.x.shape[1:]).to(setup.x.dtype)
        scale = weight / setup.x[0].numel()

        def step(xp, mom, grad, flags: StepFlags, constants: BatchConstants):
            total = grad + scale * torch.sign(xp - eta)
            _constraint_op_(xp, mom, total, torch.ones_like(flags.do_co), flags.beta, constants.alpha, constants.norm)
            _clamp_(xp, constants.lo, constants.hi)
        return step

    return _run(model, images, config, seed, uids, batch_size, make_step)
