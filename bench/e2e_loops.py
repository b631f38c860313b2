"""The loops bench_e2e.py times: the official-style PixelFade loop, the floor, and ours; and a per-step timer.

The official-style loop is written from this description of the authors' released code (not from the code):
batch 20, fp32; the masks drawn once over the whole batch tensor; a Python ``if`` on the loss tensor every
step (a host synchronisation); boolean-mask indexing for the replacement; the clean images' features not
detached, so every backward also runs through the clean graph and into the weights (``retain_graph=True``,
``model.zero_grad()``); the gradient normalised by its L1 mean; the image clamped to the batch's min/max.

The floor is what no PixelFade loop can beat with the same model evaluation: a forward and an input-gradient
backward per step, nothing else (weights frozen, eager, the same precision).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from pixelfade_fast import FadeConfig
from pixelfade_fast.engine import Acceleration, Protector, StepRecord, per_image_loss
from pixelfade_fast.reference.rng import derive_keys

OFFICIAL_BATCH = 20


@dataclass
class StepTimer:
    """Marks the end of each step: CUDA events on a GPU (no synchronisation), the host clock on a CPU."""

    device: torch.device
    marks: list = field(default_factory=list)

    def mark(self) -> None:
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def __call__(self, record: StepRecord | None = None) -> None:  # an engine observer
        self.mark()

    def seconds(self, first: int, last: int) -> float:
        """Seconds between mark ``first`` and mark ``last``."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return self.marks[first].elapsed_time(self.marks[last]) / 1000.0
        return self.marks[last] - self.marks[first]


@dataclass(frozen=True)
class Timing:
    """Seconds for a batch: ``setup`` once, then ``step`` per step; ``per_image(steps)`` in ms. ``warmup`` is the
    first, untimed call (it includes torch.compile's compilation and CUDA-graph capture): paid once per process
    and batch shape, not per batch."""

    batch: int
    setup: float
    step: float
    warmup: float = 0.0

    def per_image_ms(self, steps: int) -> float:
        return 1000.0 * (self.setup + steps * self.step) / self.batch


def _measure(timer: StepTimer, warm: int) -> tuple[float, float]:
    """(setup, per-step) seconds from marks [start, after setup, after each step ...], skipping ``warm`` steps."""
    steps = len(timer.marks) - 2
    per_step = timer.seconds(1 + warm, len(timer.marks) - 1) / (steps - warm)
    return timer.seconds(0, 1), per_step


def time_ours(model: nn.Module, images: torch.Tensor, backend: str, acceleration: Acceleration, steps: int,
              warm: int = 2) -> Timing:
    """Our loop (Protector) on one batch: a first call warms up (compiles, captures), the second is timed."""
    config = FadeConfig(steps=steps, init_steps=1, final_steps=1, finish_steps=0)
    keys = derive_keys(1, range(images.shape[0]))
    timer = StepTimer(images.device)
    with Protector(model, config, backend=backend, acceleration=acceleration, observer=timer) as protector:
        started = time.perf_counter()
        protector.protect_batch(images, keys)
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        warmup_s = time.perf_counter() - started
        timer.marks.clear()
        timer.mark()
        setup = protector.setup(images, keys)
        timer.mark()
        protector.run(setup)
        setup_s, step_s = _measure(timer, warm)
    return Timing(images.shape[0], setup_s, step_s, warmup_s)


def time_floor(model: nn.Module, images: torch.Tensor, *, amp: bool, channels_last: bool, steps: int,
               warm: int = 2) -> Timing:
    """Forward + input-gradient backward per step, eager, weights frozen; setup = the target forward."""
    device = images.device
    model = model.eval().requires_grad_(False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    timer = StepTimer(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    for timed in (False, True):
        timer.marks.clear()
        timer.mark()
        with torch.no_grad(), autocast:
            target = model(images).float()
        timer.mark()
        for _ in range(steps):
            leaf = images.detach().requires_grad_(True)
            with autocast:
                loss = per_image_loss(model(leaf), target)
            torch.autograd.grad(loss.sum(), leaf)
            timer.mark()
    setup_s, step_s = _measure(timer, warm)
    model.requires_grad_(True)
    return Timing(images.shape[0], setup_s, step_s)


def official_style_loop(model: nn.Module, x: torch.Tensor, steps: int, timer: StepTimer | None = None, *,
                        epsilon: float = 0.03, alpha: float = 0.6, beta: float = 0.01, beta_unsat: float = 0.04,
                        num_masks: int = 5, warmup: int = 5, final: int = 5, seed: int = 0) -> torch.Tensor:
    """The official-style loop on normalised images ``x`` [B, 3, H, W]; returns the protected images."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(True)  # the released code never freezes the model
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    mask_ids = torch.randint(0, num_masks, x.shape, generator=generator, device=x.device)  # whole batch at once
    low, high = x.min(), x.max()
    clean_features = model(x)  # not detached: every backward runs through this graph too
    if timer is not None:
        timer.mark()
    xp = x.clone().requires_grad_(True)
    momentum = torch.zeros_like(x)
    for t in range(steps):
        loss = (model(xp) - clean_features).square().mean()
        model.zero_grad()
        loss.backward(retain_graph=True)
        satisfied = bool(loss < epsilon) and t < steps - final  # a Python if on a device value
        step = beta if satisfied else beta_unsat
        with torch.no_grad():
            momentum = alpha * momentum + xp.grad / xp.grad.abs().mean()
            xp -= step * momentum
            if satisfied or t < warmup:
                chosen = mask_ids == t % num_masks
                xp[chosen] = noise[chosen]  # boolean-mask indexing
            xp.clamp_(low, high)
        xp.grad = None
        if timer is not None:
            timer.mark()
    return xp.detach()


def time_official(model: nn.Module, images: torch.Tensor, steps: int, warm: int = 2) -> Timing:
    timer = StepTimer(images.device)
    for _ in range(2):  # the first pass warms up the kernels
        timer.marks.clear()
        timer.mark()
        official_style_loop(model, images, steps, timer)
    setup_s, step_s = _measure(timer, warm)
    model.requires_grad_(True)
    return Timing(images.shape[0], setup_s, step_s)
