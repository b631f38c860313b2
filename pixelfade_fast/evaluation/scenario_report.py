"""Writes a GalleryResult (text-to-image or visible-infrared) as report.json, report.md and figure.png."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .protected_gallery import UNPROTECTED, GalleryResult
from ..atomic_file import write_bytes_atomic
from .report import _jsonable, _pct, _write_report_md, verdict_text


def _main_direction(result: GalleryResult) -> str:
    return next(iter(result.retrieval[UNPROTECTED]))


def summary_table(result: GalleryResult) -> str:
    """The paper's Tables 5 / 6: per method, the main direction's rank-1, mAP, mINP, mAP kept and the attack."""
    direction = _main_direction(result)
    reference = result.retrieval[UNPROTECTED][direction]["mAP"]
    lines = ["| method | R1 | mAP | mINP | mAP kept | attack PSNR | attack SSIM | leakage PSNR (dB) | leakage SSIM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, directions in result.retrieval.items():
        m = directions[direction]
        if method == UNPROTECTED:
            attack = "+∞ | 1.000 | | "
        else:
            p = result.privacy[method]
            attack = f"{p['psnr']:.2f} | {p['ssim']:.3f} | {p['leakage_psnr']:+.2f} | {p['leakage_ssim']:+.3f}"
        lines.append(f"| {method} | {_pct(m['rank1'])} | {_pct(m['mAP'])} | {_pct(m['mINP'])} | "
                     f"{_pct(m['mAP'] / reference)}% | {attack} |")
    chance = result.chance[direction]
    lines.append(f"| chance (random ranking) | {_pct(chance['rank1'])} | {_pct(chance['mAP'])} | "
                 f"{_pct(chance['mINP'])} | | | | | |")
    return "\n".join(lines)


def retrieval_table(result: GalleryResult) -> str:
    """Every direction: rank-1/5/10, mAP, mINP and mAP kept, with the chance row of each direction."""
    lines = ["| direction | gallery | R1 | R5 | R10 | mAP | mINP | mAP kept |", "|---|---|---|---|---|---|---|---|"]
    for direction in result.retrieval[UNPROTECTED]:
        reference = result.retrieval[UNPROTECTED][direction]["mAP"]
        rows = [(method, d[direction]) for method, d in result.retrieval.items()]
        rows.append(("chance (random ranking)", result.chance[direction]))
        for method, m in rows:
            kept = f"{_pct(m['mAP'] / reference)}%" if not method.startswith("chance") else ""
            lines.append(f"| {direction} | {method} | {_pct(m['rank1'])} | {_pct(m['rank5'])} | {_pct(m['rank10'])} | "
                         f"{_pct(m['mAP'])} | {_pct(m['mINP'])} | {kept} |")
    return "\n".join(lines)


def privacy_table(result: GalleryResult) -> str:
    """Per method: the attack against its floor (per gallery part when there are parts), visual distance, AD, met ε."""
    groups = sorted({g for p in result.privacy.values() for g in p["groups"]})
    group_heads = "".join(f" leakage PSNR / SSIM ({g}, U-Net) |" for g in groups)
    lines = [f"| method | attack PSNR | attack SSIM | leakage PSNR (dB) | leakage SSIM |{group_heads} "
             "leakage PSNR / SSIM, attacker given η | prot. vs orig. SSIM | AD A² | met ε |",
             "|---" * (9 + len(groups)) + "|"]
    for method, p in result.privacy.items():
        parts = "".join(f" {p['groups'][g]['leakage_psnr']:+.2f} / {p['groups'][g]['leakage_ssim']:+.3f} |"
                        for g in groups)
        known = (f"{p['known_noise_leakage_psnr']:+.2f} / {p['known_noise_leakage_ssim']:+.3f}"
                 if "known_noise_leakage_ssim" in p else "")
        lines.append(f"| {method} | {p['psnr']:.2f} | {p['ssim']:.3f} | {p['leakage_psnr']:+.2f} | "
                     f"{p['leakage_ssim']:+.3f} |{parts} {known} | {p['visual_ssim']:.3f} | {p['ad_mean']:.1f} | "
                     f"{_pct(p['met_epsilon_rate'])}% |")
    return "\n".join(lines)


def figure(result: GalleryResult, path: Path) -> None:
    """figure.png: gallery examples (original, then protected and recovered per method) and the privacy-utility
    scatter (SSIM leakage of the attack over its floor against the main direction's mAP kept)."""
    from matplotlib.figure import Figure

    rows = list(result.grid.items())
    tiles = [np.concatenate([np.pad(img.permute(1, 2, 0).clamp(0, 1).numpy(), ((1, 1), (1, 1), (0, 0)),
                                    constant_values=1.0) for img in images], axis=1) for _, images in rows]
    width = max(t.shape[1] for t in tiles)
    montage = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=1.0)
                              for t in tiles], axis=0)
    fig = Figure(figsize=(11, 0.55 * len(rows) + 1.5), dpi=110)
    grid_ax, scatter_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    grid_ax.imshow(montage, interpolation="nearest")
    row_height = montage.shape[0] / len(rows)
    grid_ax.set_yticks([(i + 0.5) * row_height for i in range(len(rows))], [name for name, _ in rows], fontsize=7)
    grid_ax.set_xticks([])
    grid_ax.set_title("gallery examples", fontsize=9)
    direction = _main_direction(result)
    reference = result.retrieval[UNPROTECTED][direction]["mAP"]
    for method, p in result.privacy.items():
        kept = result.retrieval[method][direction]["mAP"] / reference
        scatter_ax.scatter([p["leakage_ssim"]], [kept], s=30)
        scatter_ax.annotate(method, (p["leakage_ssim"], kept), fontsize=8, xytext=(4, 4), textcoords="offset points")
    scatter_ax.axhline(0.9, color="grey", linewidth=0.8, linestyle="--")
    scatter_ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    scatter_ax.set_xlabel("recovery SSIM leakage over the floor (lower: more private)", fontsize=8)
    scatter_ax.set_ylabel(f"{direction} mAP kept (of unprotected)", fontsize=8)
    scatter_ax.set_title(f"{result.task}: privacy and utility", fontsize=9)
    scatter_ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path)


def write_scenario_report(result: GalleryResult, out_dir: str | Path, command: str = "") -> Path:
    """report.json, report.md and figure.png under ``out_dir``; returns report.md's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"task": result.task, "dataset": result.dataset, "settings": dataclasses.asdict(result.settings),
               "sizes": result.sizes, "chance": result.chance, "floor": result.floor, "retrieval": result.retrieval,
               "privacy": result.privacy, "verdict": result.verdict, "timings": result.timings, "command": command}
    write_bytes_atomic(out_dir / "report.json", json.dumps(_jsonable(payload), indent=2).encode())
    figure(result, out_dir / "figure.png")
    sizes = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.sizes.items() if k != "input_size")
    settings = result.settings
    text = [f"# PixelFade evaluation, {result.task}: {result.dataset}", "",
            f"Sizes: {sizes}; input {result.sizes['input_size'][0]}x{result.sizes['input_size'][1]}. "
            f"Only the gallery is protected. Recovery attack: {settings.attack.describe()}, trained on the "
            f"attacker's protected/original training images; each figure is the best of the trained U-Net, the "
            f"protected image itself and the mean training image. Floor (the same attackers without information): "
            f"PSNR {result.floor['psnr']:.2f} dB, SSIM {result.floor['ssim']:.3f}; leakage = attack − floor. "
            "Chance: the mean scores of random rankings (20 draws) under the same protocol.",
            "", verdict_text(result), *([""] + result.notes if result.notes else []),
            "", "## Summary (as the paper's tables)", "", summary_table(result), "",
            "## Retrieval, every direction", "", retrieval_table(result), "",
            "## Privacy", "", privacy_table(result), "", "## Figure", "", "![figure](figure.png)", ""]
    return _write_report_md(out_dir, text, result.timings, command)
