"""The loops bench_e2e.py times: the official-style PixelFade loop, the floor, and ours, each as a ``Runner`` that
the benchmark tries in turn; and a per-step timer.

The official-style loop is written from this description of the authors' released code (not from the code):
batch 20, fp32; the masks drawn once over the whole batch tensor; a Python ``if`` on the loss tensor every
step (a host synchronisation); boolean-mask indexing for the replacement; the clean images' features not
detached, so every backward also runs through the clean graph and into the weights (``retain_graph=True``,
``model.zero_grad()``); the gradient normalised by its L1 mean; the image clamped to the batch's min/max.

The floor is what no PixelFade loop can beat with the same model evaluation: a forward and an input-gradient
backward per step, nothing else (weights frozen, eager, the same precision).
"""
from __future__ import annotations

import copy
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
    """Seconds for a batch: ``setup`` once (targets), then ``step`` per step; ``per_image_ms(steps)`` in ms."""

    batch: int
    setup: float
    step: float

    def per_image_ms(self, steps: int) -> float:
        return 1000.0 * (self.setup + steps * self.step) / self.batch


def _timing(timer: StepTimer, batch: int) -> Timing:
    """From marks [start, after setup, after each step ...]."""
    steps = len(timer.marks) - 2
    return Timing(batch, timer.seconds(0, 1), timer.seconds(1, len(timer.marks) - 1) / steps)


class Runner:
    """One loop, tried again and again with ``steps`` steps per try: the variants of a benchmark are tried in
    turn (A, B, C, A, B, C, ...) so that a change in the machine's load touches them all alike. Each runner has
    its own copy of the model (the official loop unfreezes its weights, the floor converts their layout)."""

    batch: int

    def run(self, steps: int) -> Timing:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OfficialRunner(Runner):
    def __init__(self, model: nn.Module, x: torch.Tensor) -> None:
        self.model, self.x, self.batch = copy.deepcopy(model), x, x.shape[0]

    def run(self, steps: int) -> Timing:
        timer = StepTimer(self.x.device)
        timer.mark()
        official_style_loop(self.model, self.x, steps, timer)
        return _timing(timer, self.batch)


class FloorRunner(Runner):
    """Forward + input-gradient backward per step, eager, weights frozen; setup = the target forward."""

    def __init__(self, model: nn.Module, x: torch.Tensor, *, channels_last: bool, amp: bool = False) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.x, self.amp, self.batch = x, amp, x.shape[0]

    def run(self, steps: int) -> Timing:
        timer = StepTimer(self.x.device)
        autocast = torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.amp)
        timer.mark()
        with torch.no_grad(), autocast:
            target = self.model(self.x).float()
        timer.mark()
        for _ in range(steps):
            leaf = self.x.detach().requires_grad_(True)
            with autocast:
                loss = per_image_loss(self.model(leaf), target)
            torch.autograd.grad(loss.sum(), leaf)
            timer.mark()
        return _timing(timer, self.batch)


class OursRunner(Runner):
    """Our engine (``Protector``) on one batch of pixels: set-up (targets, mask ids) and the steps."""

    def __init__(self, model: nn.Module, pixels: torch.Tensor, backend: str, acceleration: Acceleration,
                 steps: int) -> None:
        self.timer = StepTimer(pixels.device)
        config = FadeConfig(steps=steps, init_steps=1, final_steps=min(1, steps - 1), finish_steps=0)
        self.protector = Protector(copy.deepcopy(model), config, backend=backend, acceleration=acceleration,
                                   observer=self.timer).__enter__()
        self.pixels, self.keys, self.batch, self.steps = pixels, derive_keys(1, range(pixels.shape[0])), \
            pixels.shape[0], steps

    def run(self, steps: int) -> Timing:
        if steps != self.steps:
            raise ValueError(f"this runner runs {self.steps} steps per try")
        self.timer.marks.clear()
        self.timer.mark()
        setup = self.protector.setup(self.pixels, self.keys)
        self.timer.mark()
        self.protector.run(setup)
        return _timing(self.timer, self.batch)

    def close(self) -> None:
        self.protector.__exit__(None, None, None)


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
