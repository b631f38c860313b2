"""The evaluation suite: protect a test split with each method, then score utility and privacy.

Per method: Re-ID in the four query/gallery settings, the recovery attack against the information-free floor
(each figure the best of the registered attackers: the trained U-Net, the protected image and the mean image, and
those added by ``SuiteSettings.attackers``; leakage = best − floor; with a feature decoder added, also the leakage
over the second floor, what the clean images' features give it),
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
from .attack import prior_floor
from .attack_settings import ATTACK_PRESETS, AttackSettings
from .attackers import ATTACKERS, AttackJob, best_of_attackers, check_attackers, utility_floor
from .leakage import attack_verdict
from .methods import METHODS, check_methods, default_methods
from .privacy import anderson_darling_summary, to_normalised
from .stored import protect_stored
from .reid_metrics import reid_settings

KNOWN_NOISE_KEYS = ("psnr", "ssim", "psnr_attacker", "ssim_attacker", "unet_psnr", "unet_ssim", "leakage_psnr",
                    "leakage_ssim")


@dataclass
class SuiteSettings:
    methods: tuple[str, ...] = field(default_factory=default_methods)
    attack: AttackSettings = ATTACK_PRESETS["strong"]
    seed: int = 0
    known_noise: bool = True
    grid_images: int = 6
    # attackers added to the default best-of (attackers.py) and the size of those ("tiny", "cpu" or "full")
    attackers: tuple[str, ...] = ()
    attacker_size: str = "cpu"
    storage: StorageFormat | None = None  # score the decoded stored files (None: the protected pixels)


@dataclass
class SuiteResult:
    dataset: str
    settings: SuiteSettings
    sizes: dict
    reid: dict = field(default_factory=dict)  # method -> setting -> metrics
    privacy: dict = field(default_factory=dict)  # method -> metrics
    floor: dict = field(default_factory=dict)  # psnr, ssim, psnr_attacker, ssim_attacker, attackers[, utility]
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


def attacker_models(model: nn.Module, other_model: nn.Module | None) -> dict[str, nn.Module]:
    """The Re-ID models the attacker holds, by role (attackers.ATTACKER_MODELS)."""
    return {"authorised": model, **({"other": other_model} if other_model is not None else {})}


@dataclass
class MethodRun:
    """One method on one test set: its protected images and their features, privacy metrics, attack recoveries."""

    protected: torch.Tensor
    features: torch.Tensor
    privacy: dict
    attack: dict  # best_of's dict, the U-Net's per-image scores and recoveries, recovered_by: attacker -> images


def attack_floor(train: torch.Tensor, test: torch.Tensor, settings: SuiteSettings) -> dict:
    """The information-free floor of the suite's attack (the U-Net on noise inputs, and the mean image), and
    ``shared``: the run's state for attackers that learn once for every method (attackers.AttackJob.cache)."""
    _log(f"attack: {settings.attack.describe()}")
    _log("attack floor: U-Net on information-free inputs, and the mean training image")
    floor = prior_floor(train, test, settings.attack, seed=settings.seed, device=test.device, progress=None)
    floor["shared"] = {}
    return floor


def measure_floor(train: torch.Tensor, test: torch.Tensor, settings: SuiteSettings, result,
                  models: dict[str, nn.Module] | None = None) -> dict:
    """attack_floor, its summary kept in ``result.floor`` and its time in ``result.timings`` (a SuiteResult or a
    GalleryResult); returns the whole floor, which every method's attack is measured against. With attackers
    that have a utility floor among ``settings.attackers``, also the second floor (what the clean images'
    features give such an attacker, through ``models``), kept as ``utility`` in both."""
    started = time.perf_counter()
    floor = attack_floor(train, test, settings)
    result.floor = {key: floor[key] for key in ("psnr", "ssim", "psnr_attacker", "ssim_attacker", "attackers")}
    result.timings["floor_s"] = time.perf_counter() - started
    # no protected image here: the utility floors read the originals' features only
    job = AttackJob(train, test, test, settings.attack, floor, seed=settings.seed, device=test.device,
                    models=models or {}, size=settings.attacker_size, cache=floor["shared"])
    started = time.perf_counter()
    utility = utility_floor(job, settings.attackers)
    if utility is not None:
        floor["utility"] = utility
        result.floor["utility"] = {key: utility[key] for key in ("psnr", "ssim", "psnr_attacker", "ssim_attacker",
                                                                  "attackers")}
        result.timings["utility_floor_s"] = time.perf_counter() - started
        _log(f"utility floor (clean features): {utility['psnr']:.2f} dB ({utility['psnr_attacker']}) / "
             f"{utility['ssim']:.3f} ({utility['ssim_attacker']})")
    return floor


def protect_and_attack(method: str, model: nn.Module, test: torch.Tensor, train: torch.Tensor, floor: dict,
                       settings: SuiteSettings, config: FadeConfig,
                       original_features: torch.Tensor | None = None,
                       other_model: nn.Module | None = None) -> MethodRun:
    """Protect ``test`` and the attacker's ``train`` with ``method`` (a registered name; PixelFade methods use
    ``config``), then the recovery attack (against
    ``floor``, an attack_floor result; every figure the best of the default attackers and
    ``settings.attackers``), AD, met-ε rate, timings and, for PixelFade, the known-noise attack. Pixel filters
    (blur, mosaic) are applied afresh to every augmented training batch of the attack, the other methods once.
    The test and training sets are protected with different seeds, so no noise repeats between them.
    ``original_features``: the model's features of ``test`` (computed when None). ``other_model``: a Re-ID
    model the attacker holds besides the authorised ``model`` (for attackers that need it).
    """
    if original_features is None:
        original_features = extract_features(model, test)
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
    job = AttackJob(train, protected_test, test, settings.attack, floor, protected_train=protected_train,
                    protect_fn=fresh, seed=settings.seed, device=test.device, models=attacker_models(model, other_model),
                    size=settings.attacker_size, secret_seeds=(test_seed, train_seed), cache=floor.get("shared", {}))
    attack, scores = best_of_attackers(job, settings.attackers)
    metrics = attack_figures(attack, scores, floor)
    losses = per_image_loss(protected_features, original_features)
    ad = anderson_darling_summary(to_normalised(protected_test, model).cpu())
    metrics.update(ad_mean=float(ad["mean"]), ad_sample_size=int(ad["sample_size"]),
                   met_epsilon_rate=config.met_epsilon_rate(losses, original_features),
                   median_feature_loss=float(losses.median()), protect_s=protect_s,
                   protect_images_per_s=protected_count / protect_s)
    if stored_bytes is not None:
        metrics["stored_bytes_per_image"] = stored_bytes
    for name, attacker in ATTACKERS.items():
        if attacker.needs_secret and settings.known_noise and entry.known_noise and protected_train is not None:
            _log(f"[{method}] {name} attack: {attacker.description}")
            known = attacker.recover(job)
            metrics.update({f"{name}_{key}": known[key] for key in KNOWN_NOISE_KEYS})
    unet = scores["unet"]  # the per-image scores and the grid's recoveries are the trained U-Net's
    return MethodRun(protected_test, protected_features, metrics, {
        **attack, "psnr_per_image": unet["psnr_per_image"], "ssim_per_image": unet["ssim_per_image"],
        "recovered": unet["recovered"],
        "recovered_by": {name: s["recovered"] for name, s in scores.items() if "recovered" in s}})


def attack_figures(attack: dict, scores: dict[str, dict], floor: dict) -> dict:
    """A method's privacy figures from its best-of (``attack``) and each attacker's ``scores``: best-of and its
    winners, the U-Net alone, floor, leakage and the protected image's own scores ("visual"), then each added attacker's psnr / ssim (and extra figures) under ``attackers``, and with a second floor the
    leakage over it."""
    unet, visual = scores["unet"], scores["protected"]
    metrics = {"psnr": attack["psnr"], "ssim": attack["ssim"], "psnr_attacker": attack["psnr_attacker"],
               "ssim_attacker": attack["ssim_attacker"], "unet_psnr": unet["psnr"], "unet_ssim": unet["ssim"],
               "floor_psnr": floor["psnr"], "floor_ssim": floor["ssim"],
               "leakage_psnr": attack["psnr"] - floor["psnr"], "leakage_ssim": attack["ssim"] - floor["ssim"],
               "unet_leakage_psnr": unet["psnr"] - floor["psnr"], "unet_leakage_ssim": unet["ssim"] - floor["ssim"],
               "visual_psnr": visual["psnr"], "visual_ssim": visual["ssim"]}
    added = {name: {"psnr": s["psnr"], "ssim": s["ssim"], **s.get("extra", {})} for name, s in scores.items()
             if not ATTACKERS[name].default}
    if added:
        metrics["attackers"] = added
    if "utility" in floor:
        utility = floor["utility"]
        metrics.update(utility_floor_psnr=utility["psnr"], utility_floor_ssim=utility["ssim"],
                       utility_leakage_psnr=attack["psnr"] - utility["psnr"],
                       utility_leakage_ssim=attack["ssim"] - utility["ssim"])
    return metrics


def log_method(method: str, mean_ap: float, metrics: dict) -> None:
    _log(f"[{method}] mAP {mean_ap:.3f}, leakage {metrics['leakage_psnr']:+.2f} dB ({metrics['psnr_attacker']}) / "
         f"{metrics['leakage_ssim']:+.3f} SSIM ({metrics['ssim_attacker']}), met ε {metrics['met_epsilon_rate']:.1%}")


def run_suite(model: nn.Module, split: ReIDSplit, settings: SuiteSettings, *, dataset: str = "",
              config: FadeConfig | None = None, other_model: nn.Module | None = None) -> SuiteResult:
    """Runs every method of ``settings`` on ``split`` (query + gallery are protected; train feeds the attack) with
    ``config`` (default FadeConfig()) for the PixelFade methods and the met-ε rate. ``other_model``: a Re-ID
    model the attackers hold besides the authorised ``model`` (needed by the attackers that use one)."""
    check_methods(settings.methods)
    check_attackers(settings.attackers)
    missing = [name for name in settings.attackers if ATTACKERS[name].needs_model == "other" and other_model is None]
    if missing:
        raise ValueError(f"the attackers {missing} need another Re-ID model than the authorised one "
                         f"(pixelfade evaluate --attacker-model SPEC)")
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

    floor = measure_floor(train, test, settings, result, attacker_models(model, other_model))

    for method in settings.methods:
        started = time.perf_counter()
        run = protect_and_attack(method, model, test, train, floor, settings, config, original_features,
                                 other_model)
        result.reid[method] = reid_settings(original_features[:num_query], run.features[:num_query],
                                            original_features[num_query:], run.features[num_query:],
                                            q_ids[0], q_ids[1], g_ids[0], g_ids[1])
        result.privacy[method] = run.privacy
        result.grid[f"{method}: protected"] = run.protected[grid_index].cpu()
        result.grid[f"{method}: recovered"] = run.attack["recovered"][: len(grid_index)].cpu()
        for name, images in run.attack["recovered_by"].items():
            if not ATTACKERS[name].default:
                result.grid[f"{method}: recovered by {name}"] = images[: len(grid_index)].cpu()
        result.timings[f"{method}_s"] = time.perf_counter() - started
        log_method(method, result.reid[method]["protected->protected"]["mAP"], run.privacy)
    result.verdict = attack_verdict(result.privacy)
    _log(f"attack verdict: {result.verdict['status']}: {result.verdict['reason']}")
    return result
