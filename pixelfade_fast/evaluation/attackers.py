"""The recovery attackers the suite runs against every method: one registry of records, each a function and its
properties.

An attacker is ``recover(job) -> scores``: ``job`` (an ``AttackJob``) holds one method's protected test images,
the attacker's training data (stored protected pairs, or the black box for pixel filters), the originals to score
against, the run's floor and the Re-ID models the attacker may hold; ``scores`` has ``psnr`` and ``ssim`` (means
over the test images), their per-image arrays, and optionally ``recovered`` (the first recoveries, for figures)
and ``extra`` (other figures the report shows beside it, e.g. the authors' metric). Every method's headline figure
is the best of the attackers run (``leakage.best_of``), ties going to the first registered. The ``default``
attackers always run; ``pixelfade evaluate --attackers`` adds others (its choices and help read this registry).

An attacker with ``utility_floor`` also measures what it recovers from what any utility-preserving method must
keep (the feature decoder on the clean images' features): the report's second floor. An attacker with
``needs_secret`` was given the protection's secret and is reported apart, never in the best-of.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from ..registry import Registry
from . import authors_attack, feature_decoder
from .adversarial_attack import train_adversarial
from .attack import (ProtectFn, attacker_noise, evaluate_recovery, run_attack, score_images, train_recovery)
from .attack_settings import AttackSettings
from .attacker_sizes import ATTACKER_SIZE_PRESETS, AttackerSize
from .leakage import best_of

ATTACKER_MODELS = ("authorised", "other")  # the Re-ID models an attacker may hold
KEEP = 8  # recoveries kept per attacker for the figures


@dataclass(frozen=True)
class AttackJob:
    """One method's attack: everything an attacker may use, and the run's shared state.

    protected_train / protect_fn: the attacker's training inputs (stored pairs, or the black box itself for
    pixel filters; see ``attack.train_recovery``). floor: the run's information-free floor (``prior_floor``).
    models: the Re-ID models the attacker holds, by role (``ATTACKER_MODELS``). size: the preset of the
    attackers beyond the U-Net ("tiny", "cpu" or "full"). secret_seeds: (test seed, training seed) of the
    protection, for attackers with ``needs_secret``. cache: per-run state shared across methods (what an
    attacker learns without any protected image is learned once, e.g. the feature decoder).
    """

    original_train: torch.Tensor
    protected_test: torch.Tensor
    original_test: torch.Tensor
    settings: AttackSettings
    floor: dict
    protected_train: torch.Tensor | None = None
    protect_fn: ProtectFn | None = None
    seed: int = 0
    device: torch.device | str | None = None
    models: dict[str, nn.Module] = field(default_factory=dict)
    size: str = "cpu"
    secret_seeds: tuple[int, int] | None = None
    cache: dict = field(default_factory=dict)

    def sizes(self) -> AttackerSize:
        if self.size not in ATTACKER_SIZE_PRESETS:
            raise ValueError(f"unknown attacker size {self.size!r}; choose from {', '.join(ATTACKER_SIZE_PRESETS)}")
        return ATTACKER_SIZE_PRESETS[self.size]

    def model(self, role: str) -> nn.Module:
        if role not in self.models:
            raise ValueError(f"this attacker needs the {role} Re-ID model, which the run was not given"
                             + (" (pixelfade evaluate --attacker-model)" if role == "other" else ""))
        return self.models[role]


RecoverFn = Callable[[AttackJob], dict]


@dataclass(frozen=True)
class Attacker:
    """A recovery attacker and what the suite needs to know about it."""

    name: str
    recover: RecoverFn
    description: str
    # The Re-ID model it needs ("authorised", "other") or None.
    needs_model: str | None = None
    # What it recovers from the clean images' features alone (the second floor), or None.
    utility_floor: RecoverFn | None = None
    # Always in the best-of (in registration order); the others are added by --attackers.
    default: bool = False
    # Given the protection's secret (the seed): scored apart from the best-of, only for methods whose noise the
    # seed determines.
    needs_secret: bool = False


ATTACKERS: Registry[Attacker] = Registry("attacker")


def register_attacker(attacker: Attacker) -> Attacker:
    """Adds ``attacker`` to the registry (its name must be new); returns it."""
    if attacker.needs_model is not None and attacker.needs_model not in ATTACKER_MODELS:
        raise ValueError(f"attacker {attacker.name!r}: needs_model must be one of {ATTACKER_MODELS} or None, "
                         f"got {attacker.needs_model!r}")
    return ATTACKERS.register(attacker)


def default_attackers() -> tuple[str, ...]:
    return tuple(name for name, a in ATTACKERS.items() if a.default and not a.needs_secret)


def optional_attackers() -> tuple[str, ...]:
    """The attackers ``--attackers`` may add (neither default nor given the secret)."""
    return tuple(name for name, a in ATTACKERS.items() if not a.default and not a.needs_secret)


def check_attackers(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` (attackers to add to the defaults) as a tuple; ValueError naming the unknown ones."""
    names = tuple(names)
    unknown = [name for name in names if name not in optional_attackers()]
    if unknown:
        raise ValueError(f"unknown attackers {unknown}; choose from {', '.join(optional_attackers())} (always run: "
                         f"{', '.join(default_attackers())})")
    return names


def best_of_attackers(job: AttackJob, extra: Iterable[str] = ()) -> tuple[dict, dict[str, dict]]:
    """Runs the default attackers and ``extra`` ones (in registration order) on ``job``.

    Returns (the ``best_of`` dict over them, name -> each attacker's full scores)."""
    chosen = set(default_attackers()) | set(check_attackers(extra))
    scores = {name: attacker.recover(job) for name, attacker in ATTACKERS.items() if name in chosen}
    return best_of(scores), scores


def utility_floor(job: AttackJob, extra: Iterable[str] = ()) -> dict | None:
    """The second floor: the best of the information-free floor and what the chosen attackers with a
    ``utility_floor`` recover from the clean test images' features; None when none of them was chosen."""
    chosen = [a for name, a in ATTACKERS.items() if name in set(check_attackers(extra)) and a.utility_floor]
    if not chosen:
        return None
    scores = {a.name: a.utility_floor(job) for a in chosen}
    floor = best_of({**scores, **{name: s for name, s in job.floor["attackers"].items()}})
    floor["recovered"] = {name: s["recovered"] for name, s in scores.items() if "recovered" in s}
    return floor


def _unet(job: AttackJob) -> dict:
    net = train_recovery(job.protected_train, job.original_train, job.settings, seed=job.seed, device=job.device,
                         protect_fn=job.protect_fn)
    return evaluate_recovery(net, job.protected_test, job.original_test, seed=job.seed)


def _known_noise(job: AttackJob) -> dict:
    if job.secret_seeds is None or job.protected_train is None:
        raise ValueError("the known-noise attacker needs the protection's seeds and stored training pairs")
    test_seed, train_seed = job.secret_seeds
    shape = tuple(job.original_test.shape[1:])
    device = job.original_test.device
    return run_attack(job.protected_train, job.original_train, job.protected_test, job.original_test, job.settings,
                      floor=job.floor, seed=job.seed, device=job.device,
                      noise_train=attacker_noise(train_seed, range(job.original_train.shape[0]), shape).to(device),
                      noise_test=attacker_noise(test_seed, range(job.original_test.shape[0]), shape).to(device))


register_attacker(Attacker("unet", _unet, "the recovery U-Net trained on protected -> original pairs "
                                          "(--attack-preset)", default=True))
register_attacker(Attacker("protected", lambda job: score_images(job.protected_test, job.original_test),
                           "the protected image taken as its own recovery", default=True))
register_attacker(Attacker("mean", lambda job: job.floor["attackers"]["mean"],
                           "the mean of the attacker's training originals (no information)", default=True))
register_attacker(Attacker("known_noise", _known_noise, "the U-Net also given η (the seed leaked; --no-known-noise "
                                                        "skips it)", needs_secret=True))


def scored(recovered: torch.Tensor, original: torch.Tensor, **extra) -> dict:
    """An attacker's result from its recoveries: score_images' figures, the first recoveries, ``extra``."""
    scores = score_images(recovered, original)
    scores.update(recovered=recovered[:KEEP].cpu(), extra=extra)
    return scores


def _authors(job: AttackJob) -> dict:
    net = authors_attack.train_generator(job.protected_train, job.original_train, job.sizes().authors,
                                         seed=job.seed, device=job.device, protect_fn=job.protect_fn)
    recovered = authors_attack.recover(net, job.protected_test).to(job.original_test.device)
    theirs = authors_attack.authors_metric(recovered, job.original_test)
    return scored(recovered, job.original_test, authors_metric_psnr=theirs["psnr"],
                  authors_metric_ssim=theirs["ssim"])


def _adversarial(role: str) -> RecoverFn:
    def recover(job: AttackJob) -> dict:
        net = train_adversarial(job.protected_train, job.original_train, job.model(role), job.sizes().adversarial,
                                seed=job.seed, device=job.device, protect_fn=job.protect_fn)
        return evaluate_recovery(net, job.protected_test, job.original_test, seed=job.seed, keep=KEEP)
    return recover


def _decoder(job: AttackJob, role: str) -> feature_decoder.FeatureDecoder:
    """The run's decoder for the ``role`` model, learned on the first call (it sees no protected image)."""
    key = ("feature_decoder", role)
    if key not in job.cache:
        job.cache[key] = feature_decoder.train_decoder(job.model(role), job.original_train, job.sizes().decoder,
                                                       seed=job.seed, device=job.device)
    return job.cache[key]


def _decoded(role: str, clean: bool) -> RecoverFn:
    def recover(job: AttackJob) -> dict:
        images = job.original_test if clean else job.protected_test
        recovered = feature_decoder.decode(_decoder(job, role), job.model(role), images)
        return scored(recovered.to(job.original_test.device), job.original_test)
    return recover


register_attacker(Attacker("authors", _authors, "the PixelFade authors' attack: pix2pix unet_128 generator "
                                                "(BatchNorm), L1, Adam lr 1e-3; their min-max-rescaled PSNR/SSIM "
                                                "reported beside (--attacker-size)"))
for _role, _suffix in (("authorised", ""), ("other", "_other")):
    register_attacker(Attacker(f"adversarial{_suffix}", _adversarial(_role),
                               f"the recovery U-Net + pix2pix's PatchGAN discriminator + an identity loss through "
                               f"the {_role} Re-ID model, both after a reconstruction warm-up", needs_model=_role))
    register_attacker(Attacker(f"feature_decoder{_suffix}", _decoded(_role, clean=False),
                               f"a decoder from the {_role} model's features to images, learned on the attacker's "
                               f"public images, applied to f(protected); on f(original) it is the second floor",
                               needs_model=_role, utility_floor=_decoded(_role, clean=True)))
