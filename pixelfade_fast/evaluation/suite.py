"""The evaluation suite: protect a test split with each method, then score utility and privacy.

Per method: Re-ID in the four query/gallery settings, the recovery attack against the information-free floor
(leakage = attack − floor), protected-vs-original PSNR/SSIM, the Anderson–Darling statistic, and the rate of
images whose feature loss is below ε. PixelFade is also attacked by a "known-noise" attacker who was given η.
The test split and the attacker's training split are protected with different seeds, so no noise repeats.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import FadeConfig
from ..data.images import load_images
from ..data.records import ReIDSplit, Record
from ..engine import extract_features, per_image_loss
from .ablations import ABLATIONS
from .attack import attacker_noise, prior_floor, run_attack
from .baselines import BASELINES
from .privacy import anderson_darling_summary, to_normalised
from .reid_metrics import reid_settings

METHODS: dict[str, Callable[[nn.Module, torch.Tensor, int], torch.Tensor]] = {**BASELINES, **ABLATIONS}
KNOWN_NOISE_METHODS = ("pixelfade",)  # methods whose η is fade_noise(derive_keys(seed, 0..N-1))


@dataclass
class SuiteSettings:
    methods: tuple[str, ...] = ("pixelfade", "pixelfade_released", "mosaic", "blur", "avih")
    attack_epochs: int = 10
    attack_batch_size: int = 16
    attack_lr: float = 2e-4
    attack_width: int = 32
    max_attack_train: int | None = 512
    seed: int = 0
    known_noise: bool = True
    grid_images: int = 6


@dataclass
class SuiteResult:
    dataset: str
    settings: SuiteSettings
    sizes: dict
    reid: dict = field(default_factory=dict)  # method -> setting -> metrics
    privacy: dict = field(default_factory=dict)  # method -> metrics
    floor: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)  # name -> [k, 3, H, W] pixels for the figure


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ids(records: list[Record]) -> tuple[list[int], list[int]]:
    return [r.pid for r in records], [r.camid for r in records]


def subset(records: list[Record], limit: int | None, seed: int) -> list[Record]:
    """At most ``limit`` of ``records`` (a seeded choice, in their order); all of them when limit is None."""
    if limit is None or len(records) <= limit:
        return list(records)
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed))[:limit]
    return [records[i] for i in sorted(order.tolist())]


@dataclass
class MethodRun:
    """One method on one test set: its protected images and their features, privacy metrics, attack recoveries."""

    protected: torch.Tensor
    features: torch.Tensor
    privacy: dict
    attack: dict


def attack_settings(settings: SuiteSettings, device: torch.device) -> dict:
    """Keyword arguments of prior_floor / run_attack for the suite's settings."""
    return dict(epochs=settings.attack_epochs, batch_size=settings.attack_batch_size, lr=settings.attack_lr,
                seed=settings.seed, device=device, width=settings.attack_width, progress=None)


def protect_and_attack(method: str, model: nn.Module, test: torch.Tensor, train: torch.Tensor, floor: dict,
                       settings: SuiteSettings, config: FadeConfig,
                       original_features: torch.Tensor | None = None) -> MethodRun:
    """Protect ``test`` and the attacker's ``train`` with ``method``, then the recovery attack (against
    ``floor``, a prior_floor result), AD, met-ε rate, timings and, for PixelFade, the known-noise attack.

    The test and training sets are protected with different seeds, so no noise repeats between them.
    ``original_features``: the model's features of ``test`` (computed when None).
    """
    if original_features is None:
        original_features = extract_features(model, test)
    attack_kw = attack_settings(settings, test.device)
    test_seed, train_seed = settings.seed * 2 + 1, settings.seed * 2 + 2
    _log(f"[{method}] protecting {test.shape[0]} test and {train.shape[0]} training images")
    started = time.perf_counter()
    protect_fn = METHODS[method]
    protected_test = protect_fn(model, test, test_seed).clamp(0, 1)
    protected_train = protect_fn(model, train, train_seed).clamp(0, 1)
    protect_s = time.perf_counter() - started
    protected_features = extract_features(model, protected_test)
    _log(f"[{method}] recovery attack, {settings.attack_epochs} epochs")
    attack = run_attack(protected_train, train, protected_test, test, floor=floor, **attack_kw)
    losses = per_image_loss(protected_features, original_features)
    ad = anderson_darling_summary(to_normalised(protected_test, model).cpu())
    metrics = {key: attack[key] for key in ("psnr", "ssim", "floor_psnr", "floor_ssim", "leakage_psnr",
                                            "leakage_ssim", "visual_psnr", "visual_ssim")}
    metrics.update(ad_mean=float(ad["mean"]), ad_sample_size=int(ad["sample_size"]),
                   met_epsilon_rate=float((losses < config.epsilon).float().mean()),
                   median_feature_loss=float(losses.median()), protect_s=protect_s,
                   protect_images_per_s=(test.shape[0] + train.shape[0]) / protect_s)
    if settings.known_noise and method in KNOWN_NOISE_METHODS:
        _log(f"[{method}] known-noise attack (the attacker was given η)")
        shape = tuple(test.shape[1:])
        known = run_attack(protected_train, train, protected_test, test, floor=floor,
                           noise_train=attacker_noise(train_seed, range(train.shape[0]), shape).to(test.device),
                           noise_test=attacker_noise(test_seed, range(test.shape[0]), shape).to(test.device),
                           **attack_kw)
        metrics.update(known_noise_psnr=known["psnr"], known_noise_ssim=known["ssim"],
                       known_noise_leakage_psnr=known["leakage_psnr"],
                       known_noise_leakage_ssim=known["leakage_ssim"])
    return MethodRun(protected_test, protected_features, metrics, attack)


def run_suite(model: nn.Module, split: ReIDSplit, settings: SuiteSettings, *, dataset: str = "",
              config: FadeConfig | None = None) -> SuiteResult:
    """Runs every method of ``settings`` on ``split`` (query + gallery are protected; train feeds the attack)."""
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    config = config or FadeConfig()
    device = next(model.parameters()).device
    size = tuple(model.input_size)
    test_records = split.query + split.gallery
    train_records = subset(split.train, settings.max_attack_train, settings.seed)
    _log(f"loading {len(test_records)} test and {len(train_records)} attack-training images at {size[0]}x{size[1]}")
    test = load_images([r.path for r in test_records], size).to(device)
    train = load_images([r.path for r in train_records], size).to(device)
    num_query = len(split.query)
    q_ids, g_ids = _ids(split.query), _ids(split.gallery)
    result = SuiteResult(dataset, settings, {"query": num_query, "gallery": len(split.gallery),
                                              "attack_train": len(train_records), "input_size": list(size),
                                              "query_ids": len(split.pids("query"))})
    original_features = extract_features(model, test)
    grid_index = torch.arange(min(settings.grid_images, num_query))
    result.grid["original"] = test[grid_index].cpu()

    started = time.perf_counter()
    _log(f"attack floor: U-Net on information-free inputs, {settings.attack_epochs} epochs")
    floor = prior_floor(train, test, **attack_settings(settings, device))
    result.floor = {"psnr": floor["psnr"], "ssim": floor["ssim"]}
    result.timings["floor_s"] = time.perf_counter() - started

    for method in settings.methods:
        started = time.perf_counter()
        run = protect_and_attack(method, model, test, train, floor, settings, config, original_features)
        result.reid[method] = reid_settings(original_features[:num_query], run.features[:num_query],
                                            original_features[num_query:], run.features[num_query:],
                                            q_ids[0], q_ids[1], g_ids[0], g_ids[1])
        result.privacy[method] = run.privacy
        result.grid[f"{method}: protected"] = run.protected[grid_index].cpu()
        result.grid[f"{method}: recovered"] = run.attack["recovered"][: len(grid_index)].cpu()
        result.timings[f"{method}_s"] = time.perf_counter() - started
        pp = result.reid[method]["protected->protected"]
        _log(f"[{method}] mAP p->p {pp['mAP']:.3f}, leakage {run.privacy['leakage_psnr']:+.2f} dB / "
             f"{run.privacy['leakage_ssim']:+.3f} SSIM, met ε {run.privacy['met_epsilon_rate']:.1%}")
    return result
