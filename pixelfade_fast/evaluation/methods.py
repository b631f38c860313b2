"""The protection methods the suite evaluates: one registry of records, each a function and its properties.

A method is ``protect(model, images, seed, config) -> pixels``: images float [N, 3, H, W] in [0, 1], the result
the same shape in [0, 1]; ``config`` is the run's FadeConfig (PixelFade and its ablations use it; the baselines
that are not PixelFade ignore it). Adding a method is one function and one ``register_method`` call; the
``pixelfade evaluate --methods`` help, its default list and the suite's name check all read this registry.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from ..config import FadeConfig
from ..registry import Registry
from . import ablations, baselines

ProtectFn = Callable[[nn.Module, torch.Tensor, int, FadeConfig], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A protection method and what the suite needs to know about it."""

    name: str
    protect: ProtectFn
    description: str
    # A cheap function of the pixels alone (no model, no seed): the attacker protects every augmented training
    # batch afresh, which makes flips, shifts and colour jitter exact pairs.
    pixel_filter: bool = False
    # Its η is fade_noise(derive_keys(seed, 0..N-1)): the suite also runs the attacker who was given η.
    known_noise: bool = False
    # In the default --methods list of `pixelfade evaluate --task reid` (in registration order).
    default: bool = False
    # For PixelFade itself, its schedule: with a storage format it protects for the codec (protect_for_storage).
    schedule: str | None = None


METHODS: Registry[Method] = Registry("protection method")
register_method = METHODS.register  # (method) -> method; its name must be new


def default_methods() -> tuple[str, ...]:
    return tuple(method.name for method in METHODS.records() if method.default)


def check_methods(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple; ValueError naming the unknown ones and the registered ones."""
    names = tuple(names)
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(sorted(METHODS))}")
    return names


def _pixelfade(schedule: str) -> ProtectFn:
    def protect(model, images, seed, config):
        return baselines.pixelfade(model, images, dataclasses.replace(config, schedule=schedule), seed=seed)
    return protect


def _ablation(function: Callable[..., torch.Tensor], **params) -> ProtectFn:
    def protect(model, images, seed, config):
        return function(model, images, config=config, seed=seed, **params)
    return protect


register_method(Method("pixelfade", _pixelfade("paper"), "PixelFade, the paper's schedule (Algorithm 1)",
                       known_noise=True, default=True, schedule="paper"))
register_method(Method("pixelfade_released", _pixelfade("released"),
                       "PixelFade, the authors' released loop (one decision per batch)", default=True,
                       schedule="released"))
register_method(Method("mosaic", lambda model, images, seed, config: baselines.mosaic(images),
                       "24-pixel mosaic", pixel_filter=True, default=True))
register_method(Method("blur", lambda model, images, seed, config: baselines.gaussian_blur(images),
                       "Gaussian blur, radius 12 (the attack's control)", pixel_filter=True, default=True))
register_method(Method("avih", lambda model, images, seed, config: baselines.avih(model, images, seed=seed),
                       "AVIH-style obfuscation from noise (100 Adam steps)", default=True))
# Table 3's noise weights and Table 4's objectives as in the paper; Fig. 4's amplitudes and weights are not given
# in the paper's text, so these sweeps are ours (a in units of the normalised space, where η has std 1).
for _weight in (0.2, 0.4, 0.6, 0.8):
    register_method(Method(f"noise_weight_{_weight}", _ablation(ablations.noise_interpolation, weight=_weight),
                           f"Table 3: objective (1 - {_weight})·x + {_weight}·η"))
register_method(Method("objective_other_identity", _ablation(ablations.objective_other_identity),
                       "Table 4: objective an image of another identity"))
register_method(Method("objective_zeros", _ablation(ablations.objective_zeros), "Table 4: objective the black image"))
register_method(Method("objective_contrastive", _ablation(ablations.objective_contrastive),
                       "Table 4: objective the valid image farthest from x"))
for _amplitude in (0.1, 0.3, 1.0):
    register_method(Method(f"random_perturb_{_amplitude}", _ablation(ablations.random_perturb, amplitude=_amplitude),
                           f"Fig. 4: fresh noise of amplitude {_amplitude} instead of replacement"))
for _weight in (0.1, 1.0, 10.0):
    register_method(Method(f"l1_to_noise_{_weight}", _ablation(ablations.l1_to_noise, weight=_weight),
                           f"Fig. 4: CO on L_f + {_weight}·|x^p - η|, no replacement"))
