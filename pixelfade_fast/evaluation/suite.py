"""The evaluation suite: protect a test split with each method, then score utility and privacy.

Per method: Re-ID in the four query/gallery settings, the recovery attack against the information-free floor
(each figure the best of the trained U-Net, the protected image and the mean image; leakage = best − floor),
protected-vs-original PSNR/SSIM, the Anderson–Darling statistic, and the rate of images whose feature loss is
below ε. PixelFade is also attacked by a "known-noise" attacker who was given η. Every method is attacked with
the same ``AttackSettings``; pixel filters (blur, mosaic) are protected afresh for every augmented training batch,
the others once. The test split and the attacker's training split are protected with different seeds, so no
noise repeats. The verdict says whether the attack recovered blur (the control) clearly above the floor.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
import torch
from torch import nn

from ..config import FadeConfig
from ..data.images import load_images
from ..data.records import ReIDSplit, Record
from ..engine import extract_features, per_image_loss
from ..feature_model import model_device
from ..storage_format import StorageFormat
from .attack import attacker_noise, prior_floor, run_attack
from .attack_settings import ATTACK_PRESETS, AttackSettings
from .leakage import attack_verdict
from .methods import METHODS, check_methods, default_methods
from .privacy import anderson_darling_summary, to_normalised
from .stored import protect_stored
from .reid_metrics import reid_settings

# run_attack's figures kept per method: best-of attack and its winners, the U-Net alone, floor, leakage, visual.
ATTACK_KEYS = ("psnr", "ssim", "psnr_attacker", "ssim_attacker", "unet_psnr", "unet_ssim", "floor_psnr", "floor_ssim",
               "leakage_psnr", "leakage_ssim", "unet_leakage_psnr", "unet_leakage_ssim", "visual_psnr", "visual_ssim")
KNOWN_NOISE_KEYS = ("psnr", "ssim", "psnr_attacker", "ssim_attacker", "unet_psnr", "unet_ssim", "leakage_psnr",
                    "leakage_ssim")


@dataclass
class SuiteSettings:
    methods: tuple[str, ...] = field(default_factory=default_methods)
    attack: AttackSettings = ATTACK_PRESETS["strong"]
    seed: int = 0
    known_noise: bool = True
    grid_images: int = 6
    storage: StorageFormat | None = None  # score the decoded stored files (None: the protected pixels)


@dataclass
class SuiteResult:
    dataset: str
    settings: SuiteSettings
    sizes: dict
    reid: dict = field(default_factory=dict)  # method -> setting -> metrics
    privacy: dict = field(default_factory=dict)  # method -> metrics
    floor: dict = field(default_factory=dict)  # psnr, ssim, psnr_attacker, ssim_attacker, attackers
    verdict: dict = field(default_factory=dict)  # leakage.attack_verdict
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


def attack_floor(train: torch.Tensor, test: torch.Tensor, settings: SuiteSettings) -> dict:
    """The information-free floor of the suite's attack (the U-Net on noise inputs, and the mean image)."""
    _log(f"attack: {settings.attack.describe()}")
    _log("attack floor: U-Net on information-free inputs, and the mean training image")
    return prior_floor(train, test, settings.attack, seed=settings.seed, device=test.device, progress=None)


def measure_floor(train: torch.Tensor, test: torch.Tensor, settings: SuiteSettings, result) -> dict:
    """attack_floor, its summary kept in ``result.floor`` and its time in ``result.timings`` (a SuiteResult or a
    GalleryResult); returns the whole floor, which every method's attack is measured against."""
    started = time.perf_counter()
    floor = attack_floor(train, test, settings)
    result.floor = {key: floor[key] for key in ("psnr", "ssim", "psnr_attacker", "ssim_attacker", "attackers")}
    result.timings["floor_s"] = time.perf_counter() - started
    return floor


def protect_and_attack(method: str, model: nn.Module, test: torch.Tensor, train: torch.Tensor, floor: dict,
                       settings: SuiteSettings, config: FadeConfig,
                       original_features: torch.Tensor | None = None) -> MethodRun:
    """Protect ``test`` and the attacker's ``train`` with ``method`` (a registered name; PixelFade methods use
    ``config``), then the recovery attack (against
    ``floor``, an attack_floor result; every figure the best of several attackers), AD, met-ε rate, timings and,
    for PixelFade, the known-noise attack. Pixel filters (blur, mosaic) are applied afresh to every augmented
    training batch of the attack, the other methods once. The test and training sets are protected with
    different seeds, so no noise repeats between them. ``original_features``: the model's features of ``test``
    (computed when None).
    """
    if original_features is None:
        original_features = extract_features(model, test)
    device = test.device
    attack_kw = dict(seed=settings.seed, device=device, progress=None)
    test_seed, train_seed = settings.seed * 2 + 1, settings.seed * 2 + 2
    entry = METHODS[method]
    on_the_fly = entry.pixel_filter
    _log(f"[{method}] protecting {test.shape[0]} test" + ("" if on_the_fly else f" and {train.shape[0]} training")
         + " images")
    started = time.perf_counter()
    protected_test, stored_bytes = protect_stored(entry, model, test, test_seed, config, settings.storage)
    protected_test = protected_test.clamp(0, 1)
    protected_train = None if on_the_fly else \
        protect_stored(entry, model, train, train_seed, config, settings.storage)[0].clamp(0, 1)
    protect_s = time.perf_counter() - started
    protected_count = test.shape[0] + (0 if on_the_fly else train.shape[0])
    protected_features = extract_features(model, protected_test)
    _log(f"[{method}] recovery attack" + (" (pairs protected on the fly)" if on_the_fly else ""))
    fresh = (lambda images: protect_stored(entry, model, images, train_seed, config, settings.storage)[0]) \
        if on_the_fly else None
    attack = run_attack(protected_train, train, protected_test, test, settings.attack, floor=floor,
                        protect_fn=fresh, **attack_kw)
    losses = per_image_loss(protected_features, original_features)
    ad = anderson_darling_summary(to_normalised(protected_test, model).cpu())
    metrics = {key: attack[key] for key in ATTACK_KEYS}
    metrics.update(ad_mean=float(ad["mean"]), ad_sample_size=int(ad["sample_size"]),
                   met_epsilon_rate=config.met_epsilon_rate(losses, original_features),
                   median_feature_loss=float(losses.median()), protect_s=protect_s,
                   protect_images_per_s=protected_count / protect_s)
    if stored_bytes is not None:
        metrics["stored_bytes_per_image"] = stored_bytes
    if settings.known_noise and entry.known_noise:
        _log(f"[{method}] known-noise attack (the attacker was given η)")
        shape = tuple(test.shape[1:])
        known = run_attack(protected_train, train, protected_test, test, settings.attack, floor=floor,
                           noise_train=attacker_noise(train_seed, range(train.shape[0]), shape).to(device),
                           noise_test=attacker_noise(test_seed, range(test.shape[0]), shape).to(device),
                           **attack_kw)
        metrics.update({f"known_noise_{key}": known[key] for key in KNOWN_NOISE_KEYS})
    return MethodRun(protected_test, protected_features, metrics, attack)


def log_method(method: str, mean_ap: float, metrics: dict) -> None:
    _log(f"[{method}] mAP {mean_ap:.3f}, leakage {metrics['leakage_psnr']:+.2f} dB ({metrics['psnr_attacker']}) / "
         f"{metrics['leakage_ssim']:+.3f} SSIM ({metrics['ssim_attacker']}), met ε {metrics['met_epsilon_rate']:.1%}")


def run_suite(model: nn.Module, split: ReIDSplit, settings: SuiteSettings, *, dataset: str = "",
              config: FadeConfig | None = None) -> SuiteResult:
    """Runs every method of ``settings`` on ``split`` (query + gallery are protected; train feeds the attack) with
    ``config`` (default FadeConfig()) for the PixelFade methods and the met-ε rate."""
    check_methods(settings.methods)
    config = config or FadeConfig()
    device = model_device(model)
    size = tuple(model.input_size)
    test_records = split.query + split.gallery
    train_records = subset(split.train, settings.attack.max_pairs, settings.seed)
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

    floor = measure_floor(train, test, settings, result)

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
        log_method(method, result.reid[method]["protected->protected"]["mAP"], run.privacy)
    result.verdict = attack_verdict(result.privacy)
    _log(f"attack verdict: {result.verdict['status']}: {result.verdict['reason']}")
    return result
