"""Parameter analysis (paper Fig. 5): PixelFade's Re-ID utility and recovery privacy as one setting varies.

For each swept FadeConfig field (T, β, ε, I) and each value, the test split and the attacker's training split
are protected and attacked as the suite does (``suite.protect_and_attack``) with the base configuration changed
in that field alone; the row records protected->protected
mAP / rank-1, the best-of-attackers recovery (leakage.best_of) against the shared floor, and the met-ε rate.
A configuration that occurs in several sweeps (the defaults) is run once. Rows are written as a CSV with the
columns ``SWEEP_COLUMNS``; figures.parameter_sweep_figure draws the four panels from it.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..config import FadeConfig
from ..engine import extract_features
from .attack_settings import AttackSettings
from .reid_metrics import reid_settings
from .suite import SuiteSettings, attack_floor, protect_and_attack

# The swept FadeConfig fields with their axis labels (paper notation), in the order of Fig. 5's panels.
SWEEP_PARAMETERS = {"steps": "number of steps T", "beta": "step size β",
                    "epsilon": "feature threshold ε (× mean f0² when relative)", "num_masks": "number of masks I"}
# Default values: around the paper's defaults (T=100, β=0.01, ε=0.03, I=5) over the ranges of Fig. 5. ε is read on
# the base config's epsilon_scale (by default relative: a fraction of each image's mean squared feature).
SWEEP_VALUES = {"steps": (20, 50, 100, 150), "beta": (0.005, 0.0075, 0.01, 0.0125, 0.015),
                "epsilon": (0.01, 0.02, 0.03, 0.04, 0.05), "num_masks": (2, 3, 5, 8)}
SWEEP_COLUMNS = ("parameter", "value", "is_default", "map", "rank1", "recovery_ssim", "recovery_ssim_attacker",
                 "unet_ssim", "recovery_psnr", "recovery_psnr_attacker", "floor_ssim", "floor_psnr",
                 "met_epsilon_rate", "protect_s", "config_hash")


@dataclasses.dataclass
class SweepData:
    """Originals of the test split (query first) with their ids, and the attacker's training originals."""

    test: torch.Tensor
    num_query: int
    pids: Sequence[int]
    camids: Sequence[int]
    train: torch.Tensor


def check_values(values: dict[str, Sequence], base: FadeConfig) -> dict[str, tuple]:
    """The sweep's values, validated: known fields, non-empty, and every changed config valid."""
    unknown = sorted(set(values) - set(SWEEP_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown sweep parameters {unknown}; choose from {', '.join(SWEEP_PARAMETERS)}")
    checked = {}
    for name, sweep in values.items():
        sweep = tuple(sweep)
        if not sweep:
            raise ValueError(f"sweep of {name} has no values")
        for value in sweep:
            dataclasses.replace(base, **{name: value})  # raises FadeConfig's own message for a bad value
        checked[name] = sweep
    return checked


def run_sweep(model: nn.Module, data: SweepData, values: dict[str, Sequence], attack: AttackSettings, *,
              base: FadeConfig | None = None, seed: int = 0, log: Callable[[str], None] = print) -> list[dict]:
    """One row per (parameter, value), in the order of ``values``; see the module docstring."""
    base = base or FadeConfig()
    values = check_values(values, base)
    original_features = extract_features(model, data.test)
    q, n = slice(0, data.num_query), data.num_query
    settings = SuiteSettings(attack=attack, seed=seed, known_noise=False)
    floor = attack_floor(data.train, data.test, settings)
    method = "pixelfade" if base.schedule == "paper" else "pixelfade_released"
    cache: dict[FadeConfig, dict] = {}
    rows = []
    for name, sweep in values.items():
        for value in sweep:
            config = dataclasses.replace(base, **{name: value})
            if config not in cache:
                run = protect_and_attack(method, model, data.test, data.train, floor, settings, config,
                                         original_features)
                reid = reid_settings(original_features[q], run.features[q], original_features[n:], run.features[n:],
                                     data.pids[:n], data.camids[:n], data.pids[n:], data.camids[n:])
                pp, result = reid["protected->protected"], run.privacy
                cache[config] = dict(map=pp["mAP"], rank1=pp["rank1"], recovery_ssim=result["ssim"],
                                     recovery_ssim_attacker=result["ssim_attacker"], unet_ssim=result["unet_ssim"],
                                     recovery_psnr=result["psnr"], recovery_psnr_attacker=result["psnr_attacker"],
                                     floor_ssim=floor["ssim"], floor_psnr=floor["psnr"],
                                     met_epsilon_rate=result["met_epsilon_rate"], protect_s=result["protect_s"],
                                     config_hash=config.config_hash())
            row = dict(parameter=name, value=value, is_default=value == getattr(base, name), **cache[config])
            log(f"{name}={value}: mAP {row['map']:.3f}, recovery SSIM {row['recovery_ssim']:.3f} "
                f"({row['recovery_ssim_attacker']}), floor {row['floor_ssim']:.3f}, met ε {row['met_epsilon_rate']:.0%}")
            rows.append(row)
    return rows


def write_sweep_csv(rows: Sequence[dict], path: Path) -> Path:
    """The rows as CSV with exactly ``SWEEP_COLUMNS``, in that order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SWEEP_COLUMNS)
        writer.writeheader()
        for row in rows:
            missing = set(SWEEP_COLUMNS) - set(row)
            if missing:
                raise ValueError(f"sweep row lacks columns {sorted(missing)}: {row}")
            writer.writerow({key: row[key] for key in SWEEP_COLUMNS})
    return path


def read_sweep_csv(path: Path) -> list[dict]:
    """Rows of a sweep CSV (values as strings); a file without the sweep's columns is an error."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(SWEEP_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} is not a sweep CSV: it lacks the columns {sorted(missing)}")
        return list(reader)
