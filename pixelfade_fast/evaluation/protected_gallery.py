"""Retrieval against a protected gallery: the common part of the text-to-image and visible-infrared tasks.

Only the gallery is protected (queries are text, or original images of the other modality), through one
authorised image model. Per method (the suite's runners: PixelFade, AVIH, mosaic, blur, ...): protect the gallery
and the attacker's training images, score retrieval with the task's own ``score`` function, and run the suite's
recovery attack against its information-free floor. "unprotected" is the gallery as it is.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import FadeConfig
from ..engine import extract_features
from .leakage import attack_verdict
from .methods import check_methods
from .suite import SuiteSettings, log_method, measure_floor, protect_and_attack

UNPROTECTED = "unprotected"
ScoreFn = Callable[[torch.Tensor], dict]  # gallery features [G, D] -> direction -> evaluate_reid metrics


@dataclass
class GalleryResult:
    """Retrieval per method and direction, privacy per method, the floor, examples for the figure."""

    task: str
    dataset: str
    settings: SuiteSettings
    sizes: dict
    chance: dict = field(default_factory=dict)       # direction -> metrics of a random ranking
    retrieval: dict = field(default_factory=dict)    # method -> direction -> metrics
    privacy: dict = field(default_factory=dict)      # method -> metrics (and "groups": name -> metrics)
    floor: dict = field(default_factory=dict)
    verdict: dict = field(default_factory=dict)      # leakage.attack_verdict: did the attack recover the control?
    grid: dict = field(default_factory=dict)         # row name -> [k, 3, H, W] pixels
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)        # lines for the report (e.g. example captions)


def _group_privacy(attack: dict, floor: dict, index: np.ndarray) -> dict:
    """The trained U-Net's recovery of one part of the gallery against the noise-trained U-Net's (the per-image
    scores exist for the U-Nets only; the whole gallery's figures are the best of every attacker)."""
    psnr, ssim = float(attack["psnr_per_image"][index].mean()), float(attack["ssim_per_image"][index].mean())
    floor_psnr = float(floor["unet_psnr_per_image"][index].mean())
    floor_ssim = float(floor["unet_ssim_per_image"][index].mean())
    return {"psnr": psnr, "ssim": ssim, "floor_psnr": floor_psnr, "floor_ssim": floor_ssim,
            "leakage_psnr": psnr - floor_psnr, "leakage_ssim": ssim - floor_ssim, "count": int(len(index))}


def run_protected_gallery(result: GalleryResult, model: nn.Module, gallery: torch.Tensor, attack_train: torch.Tensor,
                          score: ScoreFn, config: FadeConfig | None = None,
                          groups: Mapping[str, np.ndarray] | None = None,
                          log: Callable[[str], None] = print) -> GalleryResult:
    """Fill ``result`` for ``gallery`` (pixels [G, 3, H, W] at the model's input size) protected by each of
    ``result.settings.methods`` with ``model``; ``attack_train``: the attacker's original images.

    ``groups``: named index arrays into the gallery (e.g. its infrared and visible parts) whose attack scores
    are also reported on their own. The figure shows the first gallery images (at most 8: the attack keeps
    the recoveries of 8).
    """
    settings = result.settings
    check_methods(settings.methods)
    config = config or FadeConfig()
    grid_index = torch.arange(min(settings.grid_images, 8, gallery.shape[0]))
    original_features = extract_features(model, gallery)
    result.retrieval[UNPROTECTED] = score(original_features)
    result.grid["original"] = gallery[grid_index].cpu()

    floor = measure_floor(attack_train, gallery, settings, result)
    for method in settings.methods:
        started = time.perf_counter()
        run = protect_and_attack(method, model, gallery, attack_train, floor, settings, config, original_features)
        result.retrieval[method] = score(run.features)
        result.privacy[method] = {**run.privacy, "groups": {
            name: _group_privacy(run.attack, floor, np.asarray(index)) for name, index in (groups or {}).items()}}
        result.grid[f"{method}: protected"] = run.protected[grid_index].cpu()
        result.grid[f"{method}: recovered"] = run.attack["recovered"][grid_index].cpu()
        result.timings[f"{method}_s"] = time.perf_counter() - started
        log_method(method, next(iter(result.retrieval[method].values()))["mAP"], run.privacy)
    result.verdict = attack_verdict(result.privacy)
    return result
