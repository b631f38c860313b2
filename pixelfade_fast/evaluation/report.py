"""Writes a SuiteResult as report.json, report.md and PNG figures (image grid, privacy-utility scatter)."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .suite import SuiteResult

SETTINGS = ("protected->protected", "original->protected", "protected->original", "original->original")
# Without originals (third-party data), show a handful of thumbnails, and protected ones only where they are
# far from the original (protected-vs-original SSIM below this): mosaic or blur thumbnails still show the person.
THIRD_PARTY_COLUMNS = 3
THIRD_PARTY_MAX_SSIM = 0.1


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.replace(temp, path)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def headline_table(result: SuiteResult) -> str:
    """Markdown: per method, p->p utility kept, leakage over the floor, visual distance, AD, met-ε rate."""
    lines = ["| method | p→p rank-1 | p→p mAP | mAP kept | attack PSNR | attack SSIM | leakage PSNR (dB) | "
             "leakage SSIM | prot. vs orig. SSIM | AD A² | met ε |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, privacy in result.privacy.items():
        reid = result.reid[method]
        pp, oo = reid["protected->protected"], reid["original->original"]
        lines.append(f"| {method} | {_pct(pp['rank1'])} | {_pct(pp['mAP'])} | {_pct(pp['mAP'] / oo['mAP'])}% | "
                     f"{privacy['psnr']:.2f} | {privacy['ssim']:.3f} | {privacy['leakage_psnr']:+.2f} | "
                     f"{privacy['leakage_ssim']:+.3f} | {privacy['visual_ssim']:.3f} | {privacy['ad_mean']:.1f} | "
                     f"{_pct(privacy['met_epsilon_rate'])}% |")
    return "\n".join(lines)


def reid_table(result: SuiteResult) -> str:
    lines = ["| method | setting | rank-1 | rank-5 | rank-10 | mAP | mINP |", "|---|---|---|---|---|---|---|"]
    for method, reid in result.reid.items():
        for setting in SETTINGS:
            m = reid[setting]
            lines.append(f"| {method} | {setting} | {_pct(m['rank1'])} | {_pct(m['rank5'])} | {_pct(m['rank10'])} | "
                         f"{_pct(m['mAP'])} | {_pct(m['mINP'])} |")
    return "\n".join(lines)


def known_noise_table(result: SuiteResult) -> str:
    rows = [(m, p) for m, p in result.privacy.items() if "known_noise_psnr" in p]
    if not rows:
        return ""
    lines = ["| method | attacker | PSNR | SSIM | leakage PSNR | leakage SSIM |", "|---|---|---|---|---|---|"]
    for method, p in rows:
        lines.append(f"| {method} | blind | {p['psnr']:.2f} | {p['ssim']:.3f} | {p['leakage_psnr']:+.2f} | "
                     f"{p['leakage_ssim']:+.3f} |")
        lines.append(f"| {method} | given η (seed leaked) | {p['known_noise_psnr']:.2f} | {p['known_noise_ssim']:.3f} "
                     f"| {p['known_noise_leakage_psnr']:+.2f} | {p['known_noise_leakage_ssim']:+.3f} |")
    return "\n".join(lines)


def image_grid(rows: dict[str, torch.Tensor], scale: int = 1) -> Image.Image:
    """One row per entry (label on the left), images side by side."""
    first = next(iter(rows.values()))
    count, _, height, width = first.shape
    label_width = 190
    canvas = Image.new("RGB", (label_width + count * (width * scale + 2), len(rows) * (height * scale + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (label, images) in enumerate(rows.items()):
        top = row * (height * scale + 2)
        draw.text((4, top + height * scale // 2 - 6), label, fill="black")
        for col in range(min(count, images.shape[0])):
            array = (images[col].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            tile = Image.fromarray(np.ascontiguousarray(array))
            if scale != 1:
                tile = tile.resize((width * scale, height * scale), Image.NEAREST)
            canvas.paste(tile, (label_width + col * (width * scale + 2), top))
    return canvas


def scatter(points: dict[str, tuple[float, float]], x_label: str, y_label: str, size=(640, 480)) -> Image.Image:
    """A plain scatter plot (privacy on x, utility on y) drawn with PIL, one labelled dot per method."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 70, size[0] - 20, 20, size[1] - 50
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    x_lo, x_hi = min(xs + [0.0]), max(xs + [0.05])
    y_lo, y_hi = 0.0, max(ys + [1.0])
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    for tick in range(5):
        fx, fy = tick / 4, tick / 4
        x = left + fx * (right - left)
        y = bottom - fy * (bottom - top)
        draw.text((x - 14, bottom + 6), f"{x_lo + fx * (x_hi - x_lo):.3f}", fill="black")
        draw.text((8, y - 6), f"{y_lo + fy * (y_hi - y_lo):.2f}", fill="black")
    draw.text(((left + right) // 2 - 80, size[1] - 22), x_label, fill="black")
    draw.text((8, 2), y_label, fill="black")
    for name, (px, py) in points.items():
        x = left + (px - x_lo) / max(x_hi - x_lo, 1e-9) * (right - left)
        y = bottom - (py - y_lo) / max(y_hi - y_lo, 1e-9) * (bottom - top)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill="crimson")
        draw.text((x + 6, y - 12), name, fill="black")
    return image


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def grid_rows(result: SuiteResult, show_originals: bool) -> dict[str, torch.Tensor]:
    """The rows of grid.png: everything, or without originals a few columns of non-revealing thumbnails."""
    if show_originals:
        return dict(result.grid)
    rows = {}
    for name, images in result.grid.items():
        if name == "original":
            continue
        method, kind = name.split(": ")
        if kind == "protected" and result.privacy[method]["visual_ssim"] >= THIRD_PARTY_MAX_SSIM:
            continue
        rows[name] = images[:THIRD_PARTY_COLUMNS]
    return rows


def write_report(result: SuiteResult, out_dir: Path, command: str = "", show_originals: bool = True) -> Path:
    """report.json, report.md, grid.png and privacy_utility.png under ``out_dir``; returns report.md's path.

    show_originals False leaves the original images out of grid.png (third-party datasets whose images must
    not be redistributed): a few columns of recovered thumbnails and of protected ones far from the originals.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"dataset": result.dataset, "settings": dataclasses.asdict(result.settings), "sizes": result.sizes,
               "floor": result.floor, "reid": result.reid, "privacy": result.privacy, "timings": result.timings,
               "command": command}
    _write_atomic(out_dir / "report.json", json.dumps(_jsonable(payload), indent=2).encode())
    image_grid(grid_rows(result, show_originals), scale=1 if result.sizes["input_size"][0] >= 128 else 2).save(
        out_dir / "grid.png")
    points = {m: (p["leakage_ssim"], result.reid[m]["protected->protected"]["mAP"]) for m, p in result.privacy.items()}
    scatter(points, "privacy: recovery SSIM leakage over floor (lower is better)",
            "utility: p->p mAP").save(out_dir / "privacy_utility.png")
    sizes = result.sizes
    text = [f"# PixelFade evaluation: {result.dataset}", "",
            f"Query {sizes['query']} images ({sizes['query_ids']} identities), gallery {sizes['gallery']}, "
            f"attacker training set {sizes['attack_train']}, input {sizes['input_size'][0]}x{sizes['input_size'][1]}. "
            f"Recovery attack: U-Net (width {result.settings.attack_width}), L1, Adam, "
            f"{result.settings.attack_epochs} epochs. Floor (attack on information-free inputs): "
            f"PSNR {result.floor['psnr']:.2f} dB, SSIM {result.floor['ssim']:.3f}. "
            f"Leakage = attack − floor. AD over {next(iter(result.privacy.values()))['ad_sample_size']} values per image.",
            "", "## Headline", "", headline_table(result), "", "## Re-ID, four settings", "", reid_table(result), ""]
    known = known_noise_table(result)
    if known:
        text += ["## Seed leak: attacker given η", "", known, ""]
    text += ["## Figures", "", "![grid](grid.png)", "", "![privacy-utility](privacy_utility.png)", "",
             "## Timings (s)", "", ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()), ""]
    if command:
        text += ["## Command", "", f"    {command}", ""]
    path = out_dir / "report.md"
    _write_atomic(path, "\n".join(text).encode())
    return path
