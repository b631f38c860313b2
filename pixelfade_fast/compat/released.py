"""The interface of the authors' released PixelFade code, running on our engine with ``schedule="released"``.

Their pipeline builds ``PixelFade(opt, logger, data_shape)`` once and calls ``protect_image(model, data)`` per
batch, with ``data`` already in the model's normalised input space; it gets back ``(protected,
protected_features)``. ``PixelFade`` here has the same names, argument meanings, option names and defaults and
return values, so their script needs only its import changed (docs/drop-in.md, "From the authors' code in two
lines"). Written from the description of their code in issue 24 and the paper, not from their source.
"""
from __future__ import annotations

import argparse
import logging
import math
from typing import Any

import torch
from torch import nn

from ..config import FadeConfig
from ..engine import Protector, check_features
from ..feature_model import features_of, model_device
from ..input_space import InputSpace
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed

# Their options and defaults (their protect_image.py's argparse): name -> default.
OPTION_DEFAULTS: dict[str, Any] = {
    "max_iter": 100,  # T: steps
    "fade_num_iter": 5,  # I: replacement masks
    "warmup_iter": 5,  # warm-up steps that replace whatever the loss
    "epsilon": 0.03,  # ε on the batch-mean squared feature distance
    "beta": 0.01,  # step size while the batch is below ε
    "beta_temp": 0.04,  # step size while it is above ε, and in the last steps (their CUHK03 runs: 0.02)
    "momentum_w": 0.6,  # α: momentum decay
    "batch_size": 20,  # their loader's batch size (any batch size runs here)
}
FINAL_STEPS = 5  # their loop's closing steps without replacement, fixed in their code


def released_options(**overrides) -> argparse.Namespace:
    """Their options with their defaults, as the ``argparse.Namespace`` their script passes as ``opt``."""
    unknown = sorted(set(overrides) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; the options are {', '.join(OPTION_DEFAULTS)}")
    return argparse.Namespace(**{**OPTION_DEFAULTS, **overrides})


def _option(opt, name: str, kind: type, low, high=None, low_open: bool = False, high_open: bool = False):
    value = getattr(opt, name, OPTION_DEFAULTS[name])
    if (isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int)
            or not math.isfinite(value)):
        raise ValueError(f"opt.{name} must be {'a finite number' if kind is float else 'an integer'}, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        bounds = f"{'above' if low_open else 'at least'} {low}" + (
            "" if high is None else f" and {'below' if high_open else 'at most'} {high}")
        raise ValueError(f"opt.{name} must be {bounds}, got {value}")
    return kind(value)


def config_from_options(opt) -> FadeConfig:
    """The FadeConfig that runs their loop for options ``opt`` (an object with their option names as attributes;
    a missing one takes their default).

    Our step measures the loss, updates, then replaces (their replacement opens the next step), so our step 0
    measures the clean image (loss 0, gradient 0: the update moves nothing) and ends with their first
    replacement; steps 1..T are their steps 0..T-1, hence ``steps = max_iter + 1``. (The gradient is exactly 0
    where the loop's model evaluation rounds as the target's did, as on the CPU; where kernels round differently
    from call to call, as some CUDA kernels may, that first update is a β step along the rounding's gradient.) Their last 5 steps neither
    replace nor use β: our ``final_steps`` (at most max_iter). Their warm-up ends before those steps:
    ``warmup_iter <= max_iter + 1 - final_steps``.
    """
    max_iter = _option(opt, "max_iter", int, 1)
    warmup = _option(opt, "warmup_iter", int, 0)
    final = min(FINAL_STEPS, max_iter)
    if warmup > max_iter + 1 - final:
        raise ValueError(f"opt.warmup_iter ({warmup}) must be at most {max_iter + 1 - final} with max_iter "
                         f"{max_iter}: the warm-up ends before the last {final} steps; raise max_iter or lower "
                         f"warmup_iter")
    _option(opt, "batch_size", int, 1)
    return FadeConfig(
        steps=max_iter + 1, init_steps=warmup, final_steps=final,
        num_masks=_option(opt, "fade_num_iter", int, 1, 255),
        epsilon=_option(opt, "epsilon", float, 0.0, low_open=True),
        alpha=_option(opt, "momentum_w", float, 0.0, 1.0, high_open=True),
        beta=_option(opt, "beta", float, 0.0, low_open=True),
        beta_unsat=_option(opt, "beta_temp", float, 0.0, low_open=True),
        schedule="released", norm="l1mean", masks="element", clamp="data", feature_norm=False, finish_steps=0,
        quantize=False, epsilon_scale="absolute")


class PixelFade:
    """The authors' ``PixelFade`` object on our engine.

    opt: their options (``released_options()``; any object with those attribute names, e.g. their argparse
        Namespace; a missing option takes their default). logger: kept as ``self.logger`` for the caller's
        use, as theirs. data_shape: the images' (H, W); ``protect_image`` checks the data against it.
    seed: our addition, the secret that fixes every image's noise and masks (default: 256 random bits, like
        their unseeded noise: not reproducible). The images of successive calls get successive uids, so every
        image has its own noise and masks. backend: the fused step's backend ("auto", "reference", "triton",
        "cpp").

    Their behaviours reproduced: the options and their meanings; the batch-mean ε test deciding for the whole
    batch (replacement in the warm-up and after a step below ε, β below ε and β_temp otherwise and in the last 5
    steps); momentum on the gradient normalised by each image's mean |g|; element-wise masks taken in turn
    (step mod fade_num_iter); clamping to the batch's min and max of ``data``; standard normal noise in the
    normalised space; results detached on the CPU.

    What we do differently, and why:
    - ε is tested on the batch mean, as theirs: one image far above ε keeps its whole batch replacing less and
      stepping with β_temp. We keep it because this object exists to give their results; for a decision per
      image use ``pixelfade_fast.protect`` (the paper's schedule, per-image ε).
    - Their masks are built once, for a batch of ``opt.batch_size`` images, as one random partition of the whole
      batch tensor: every batch gets the same masks, a smaller batch takes the partition's first elements (its
      masks then cover its images unevenly), a larger batch fails, and the elements left over by the rounding
      are never replaced. Ours are drawn per image from its key: any batch size, every element in exactly one of
      the masks, no two images (or batches) sharing them.
    - Their noise comes from the global torch RNG on every call; ours from the seed and the image's uid, so a run
      can be repeated (and verified) by whoever holds the seed.
    - Their replacement leaves values outside the batch's range until the next step's clamp; ours clamps them
      at once (the engine's step: update, replace, clamp), so every loss is measured on an image in the range.
    - They return the features measured before the last update; we return the features of the images
      returned (what a gallery stores and matches).
    - Their clean features stay in the autograd graph (every step also backpropagates into the weights); ours
      are computed once without a graph and the weights are frozen during the call (restored after).
    - No ``.cuda()``: the data moves to the model's device, whatever it is.
    """

    def __init__(self, opt, logger: logging.Logger | None = None, data_shape=None, *, seed: int | None = None,
                 backend: str | None = "auto") -> None:
        self.opt = opt
        self.logger = logger
        self.data_shape = None if data_shape is None else tuple(int(v) for v in data_shape)
        if self.data_shape is not None and len(self.data_shape) != 2:
            raise ValueError(f"data_shape must be the images' (H, W), got {data_shape!r}")
        self.config = config_from_options(opt)
        self.seed = random_seed(DEFAULT_CONTRACT) if seed is None else int(seed)
        self.backend = backend
        self.images_done = 0  # the uid of the next image

    def _check(self, model: nn.Module, data: torch.Tensor) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(data, torch.Tensor) or data.dim() != 4 or data.shape[1] != 3 or data.shape[0] == 0:
            shape = list(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
            raise ValueError(f"data must be a batch of normalised images [B, 3, H, W] with B >= 1, got {shape}")
        if not data.is_floating_point():
            raise TypeError(f"data must be floating point (the model's normalised input), got {data.dtype}")
        if self.data_shape is not None and tuple(data.shape[2:]) != self.data_shape:
            raise ValueError(f"data is {data.shape[2]}x{data.shape[3]} but this PixelFade was built for data_shape "
                             f"{self.data_shape[0]}x{self.data_shape[1]} (H x W)")

    def protect_image(self, model: nn.Module, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Protect ``data`` (float [B, 3, H, W] in the model's normalised input space, any device, any B) against
        recovery while ``model`` still matches it. Returns ``(protected, protected_features)`` on the CPU,
        detached: the protected images in the same space [B, 3, H, W] and ``model``'s features of them [B, D]."""
        self._check(model, data)
        device = model_device(model, data.device)
        x = data.detach().to(device, torch.float32)
        uids = range(self.images_done, self.images_done + x.shape[0])
        keys = derive_keys(self.seed, uids, DEFAULT_CONTRACT)
        with Protector(model, self.config, backend=self.backend, space=InputSpace.identity(x.shape[1])) as protector:
            protected, _ = protector.run(protector.setup(x, keys))
            with torch.no_grad():
                features = features_of(model(protected))
        check_features(features, x.shape[0])
        self.images_done += x.shape[0]
        return protected.detach().cpu(), features.detach().float().cpu()
