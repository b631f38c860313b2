"""Writes a SuiteResult as report.json, report.md and PNG figures (image grid, privacy–utility, AD vs recovery)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..atomic_file import write_bytes_atomic
from .figures import ad_recovery_figure, privacy_utility_figure, recoveries_figure
from .suite import SuiteResult

SETTINGS = ("protected->protected", "original->protected", "protected->original", "original->original")
# Without originals (third-party data), show a handful of thumbnails, and protected ones only where they are
# far from the original (protected-vs-original SSIM below this): mosaic or blur thumbnails still show the person.
THIRD_PARTY_COLUMNS = 3
THIRD_PARTY_MAX_SSIM = 0.1
ATTACKER_NAMES = {"unet": "U-Net", "protected": "image", "mean": "mean"}  # short names in table cells


def _name(attacker: str) -> str:
    return ATTACKER_NAMES.get(attacker, attacker)


def _write_report_md(out_dir: Path, text: list[str], timings: dict, command: str) -> Path:
    """report.md: ``text``, then the timings and the command that made the report; returns its path."""
    text = [*text, "## Timings (s)", "", ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), ""]
    if command:
        text += ["## Command", "", f"    {command}", ""]
    path = out_dir / "report.md"
    write_bytes_atomic(path, "\n".join(text).encode())
    return path


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _by(privacy: dict, metric: str, digits: int, prefix: str = "") -> str:
    """A best-of figure and, in brackets, the attacker that reached it."""
    return f"{privacy[prefix + metric]:.{digits}f} ({_name(privacy[prefix + metric + '_attacker'])})"


def headline_table(result: SuiteResult) -> str:
    """Markdown: per method, p->p utility kept, best recovery and its leakage over the floor, AD, met-ε rate."""
    lines = ["| method | p→p rank-1 | p→p mAP | mAP kept | recovery PSNR (by) | recovery SSIM (by) | "
             "leakage PSNR (dB) | leakage SSIM | AD A² | met ε |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, privacy in result.privacy.items():
        reid = result.reid[method]
        pp, oo = reid["protected->protected"], reid["original->original"]
        lines.append(f"| {method} | {_pct(pp['rank1'])} | {_pct(pp['mAP'])} | {_pct(pp['mAP'] / oo['mAP'])}% | "
                     f"{_by(privacy, 'psnr', 2)} | {_by(privacy, 'ssim', 3)} | {privacy['leakage_psnr']:+.2f} | "
                     f"{privacy['leakage_ssim']:+.3f} | {privacy['ad_mean']:.1f} | "
                     f"{_pct(privacy['met_epsilon_rate'])}% |")
    return "\n".join(lines)


def attackers_table(result: SuiteResult) -> str:
    """Markdown: per method, what each attacker recovered (the best of them is the headline figure)."""
    lines = ["| method | U-Net PSNR | U-Net SSIM | U-Net leakage (dB / SSIM) | protected image PSNR | "
             "protected image SSIM | best PSNR (by) | best SSIM (by) |", "|---|---|---|---|---|---|---|---|"]
    for method, p in result.privacy.items():
        lines.append(f"| {method} | {p['unet_psnr']:.2f} | {p['unet_ssim']:.3f} | {p['unet_leakage_psnr']:+.2f} / "
                     f"{p['unet_leakage_ssim']:+.3f} | {p['visual_psnr']:.2f} | {p['visual_ssim']:.3f} | "
                     f"{_by(p, 'psnr', 2)} | {_by(p, 'ssim', 3)} |")
    return "\n".join(lines)


def added_attackers_table(result: SuiteResult) -> str:
    """Markdown: per method, what each attacker added by --attackers recovered (with the authors' metric beside
    theirs) and, with a second floor, the method's leakage over both floors; empty when none was added."""
    names = list(dict.fromkeys(name for p in result.privacy.values() for name in p.get("attackers", {})))
    if not names:
        return ""
    utility = "utility" in result.floor
    header = ["method", *(f"{name} PSNR / SSIM" for name in names), "best PSNR (by)", "best SSIM (by)",
              "leakage over the floor"] + (["leakage over the utility floor"] if utility else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, p in result.privacy.items():
        cells = []
        for name in names:
            scores = p["attackers"][name]
            cell = f"{scores['psnr']:.2f} / {scores['ssim']:.3f}"
            if "authors_metric_psnr" in scores:
                cell += f" (their metric {scores['authors_metric_psnr']:.2f} / {scores['authors_metric_ssim']:.3f})"
            cells.append(cell)
        cells += [_by(p, "psnr", 2), _by(p, "ssim", 3), f"{p['leakage_psnr']:+.2f} dB / {p['leakage_ssim']:+.3f}"]
        if utility:
            cells.append(f"{p['utility_leakage_psnr']:+.2f} dB / {p['utility_leakage_ssim']:+.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def utility_floor_text(result: SuiteResult) -> str:
    """One paragraph on the second floor (what the clean images' features give the feature decoder); empty
    without one."""
    utility = result.floor.get("utility")
    if not utility:
        return ""
    decoders = ", ".join(f"{name} {s['psnr']:.2f} dB / {s['ssim']:.3f}" for name, s in utility["attackers"].items()
                         if name.startswith("feature_decoder"))
    return (f"**Second floor, what utility alone leaks:** a decoder from Re-ID features to images, learned on the "
            f"attacker's public images and applied to the clean test images' own features ({decoders}); with the "
            f"information-free floor: PSNR {utility['psnr']:.2f} dB ({_name(utility['psnr_attacker'])}), SSIM "
            f"{utility['ssim']:.3f} ({_name(utility['ssim_attacker'])}). A method that keeps f(x^p) ≈ f(x) "
            f"cannot be expected to leak less than this; leakage over it is what its pixels add.")


def verdict_text(result: SuiteResult) -> str:
    """One paragraph: whether the attack separated the control from the floor, so whether privacy is judged."""
    verdict = result.verdict
    status = {"conclusive": "conclusive", "inconclusive": "INCONCLUSIVE",
              "no control": "UNVERIFIED (no control)"}[verdict["status"]]
    return f"**Attack verdict: {status}.** {verdict['reason'][0].upper()}{verdict['reason'][1:]}."


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
    lines = ["| method | attacker | PSNR (by) | SSIM (by) | leakage PSNR | leakage SSIM |", "|---|---|---|---|---|---|"]
    for method, p in rows:
        lines.append(f"| {method} | blind | {_by(p, 'psnr', 2)} | {_by(p, 'ssim', 3)} | {p['leakage_psnr']:+.2f} | "
                     f"{p['leakage_ssim']:+.3f} |")
        lines.append(f"| {method} | given η (seed leaked) | {_by(p, 'psnr', 2, 'known_noise_')} | "
                     f"{_by(p, 'ssim', 3, 'known_noise_')} | {p['known_noise_leakage_psnr']:+.2f} | "
                     f"{p['known_noise_leakage_ssim']:+.3f} |")
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


def recovery_panels(result: SuiteResult, show_originals: bool) -> dict[str, dict[str, tuple]]:
    """recoveries_figure's rows from the grid (as grid_rows hides originals): per method, the original (if shown),
    the protected images (if shown) and each attacker's recoveries, captioned PSNR / SSIM, the PSNR winner bold."""
    shown = grid_rows(result, show_originals)
    rows = {}
    for method, p in result.privacy.items():
        scores = {"unet": (p["unet_psnr"], p["unet_ssim"]), **{n: (s["psnr"], s["ssim"])
                                                               for n, s in p.get("attackers", {}).items()}}
        cells = {}
        if "original" in shown:
            cells["original"] = (shown["original"], "", False)
        if f"{method}: protected" in shown:
            cells["protected"] = (shown[f"{method}: protected"], f"{p['visual_psnr']:.2f} / {p['visual_ssim']:.3f}",
                                  p["psnr_attacker"] == "protected")
        for name, (psnr_db, ssim_value) in scores.items():
            key = f"{method}: recovered" + ("" if name == "unet" else f" by {name}")
            if key in shown:
                cells[_name(name)] = (shown[key], f"{psnr_db:.2f} / {ssim_value:.3f}", p["psnr_attacker"] == name)
        rows[method] = cells
    return rows


def report_figures(payload: dict, out_dir: Path) -> list[Path]:
    """privacy_utility.png and ad_vs_recovery.png from a report.json payload (also an older one, without a
    verdict: scripts/redraw_report_figures.py)."""
    privacy, reid, floor = payload["privacy"], payload["reid"], payload["floor"]
    verdict = payload.get("verdict", {}).get("status", "not recorded")
    title = f"{payload['dataset']}; attack verdict: {verdict}"
    return [privacy_utility_figure({m: (p["ssim"], reid[m]["protected->protected"]["mAP"]) for m, p in privacy.items()},
                                   Path(out_dir) / "privacy_utility.png", floor_ssim=floor["ssim"], title=title),
            ad_recovery_figure({m: (p["ad_mean"], p["ssim"]) for m, p in privacy.items()},
                               Path(out_dir) / "ad_vs_recovery.png", floor_ssim=floor["ssim"],
                               sample_size=next(iter(privacy.values()))["ad_sample_size"], title=title)]


def write_report(result: SuiteResult, out_dir: Path, command: str = "", show_originals: bool = True) -> Path:
    """report.json, report.md, grid.png, privacy_utility.png and ad_vs_recovery.png under ``out_dir``; returns
    report.md's path.

    show_originals False leaves the original images out of grid.png (third-party datasets whose images must
    not be redistributed): a few columns of recovered thumbnails and of protected ones far from the originals.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.asdict(result.settings)
    if settings["storage"] is None:  # scored the protected pixels themselves (reports before --format read so)
        del settings["storage"]
    payload = {"dataset": result.dataset, "settings": settings, "sizes": result.sizes,
               "floor": result.floor, "verdict": result.verdict, "reid": result.reid, "privacy": result.privacy,
               "timings": result.timings, "command": command}
    write_bytes_atomic(out_dir / "report.json", json.dumps(_jsonable(payload), indent=2).encode())
    image_grid(grid_rows(result, show_originals), scale=1 if result.sizes["input_size"][0] >= 128 else 2).save(
        out_dir / "grid.png")
    report_figures(payload, out_dir)
    if any("attackers" in p for p in result.privacy.values()):
        recoveries_figure(recovery_panels(result, show_originals), out_dir / "recoveries.png",
                          title=f"{result.dataset}: recoveries by attacker (PSNR / SSIM; bold: the best-of winner "
                                f"in PSNR)")
    sizes, floor = result.sizes, result.floor
    mean = floor["attackers"]["mean"]
    text = [f"# PixelFade evaluation: {result.dataset}", "",
            f"Query {sizes['query']} images ({sizes['query_ids']} identities), gallery {sizes['gallery']}, "
            f"attacker training set {sizes['attack_train']}, input {sizes['input_size'][0]}x{sizes['input_size'][1]}. "
            + (f"Every figure is of the protected images stored as {result.settings.storage.describe()} and decoded. "
               if result.settings.storage is not None else "") +
            f"Recovery attack: {result.settings.attack.describe()}. Each recovery figure is the best of three "
            f"attackers (by: U-Net = the trained network, image = the protected image itself, mean = the mean "
            f"training image)" + (f" and of {', '.join(result.settings.attackers)} (below)"
                                  if result.settings.attackers else "")
            + ". Floor (best attacker without information: the U-Net on noise inputs, or the mean "
            f"image {mean['psnr']:.2f} dB / {mean['ssim']:.3f}): PSNR {floor['psnr']:.2f} dB "
            f"({_name(floor['psnr_attacker'])}), SSIM {floor['ssim']:.3f} "
            f"({_name(floor['ssim_attacker'])}). Leakage = best attack − floor. "
            f"AD over {next(iter(result.privacy.values()))['ad_sample_size']} values per image.",
            "", verdict_text(result), "", "## Headline", "", headline_table(result), "",
            "## Recovery attack, each attacker", "", attackers_table(result), ""]
    added = added_attackers_table(result)
    if added:
        text += ["## The reviewer's attackers (--attackers)", "",
                 f"Sizes: `{result.settings.attacker_size}` (attacker_sizes.py). Each best-of figure above and "
                 f"below includes them; the authors' metric (min-max rescaled per batch) is beside theirs, never "
                 f"in the best-of.", ""]
        floor_text = utility_floor_text(result)
        text += ([floor_text, ""] if floor_text else []) + [added, "", "![recoveries by attacker](recoveries.png)",
                                                             ""]
    text += ["## Re-ID, four settings", "", reid_table(result), ""]
    known = known_noise_table(result)
    if known:
        text += ["## Seed leak: attacker given η", "", known, ""]
    text += ["## Figures", "", "![grid](grid.png)", "", "![privacy-utility](privacy_utility.png)", "",
             "![AD vs recovery (paper Fig. 1(a))](ad_vs_recovery.png)", ""]
    return _write_report_md(out_dir, text, result.timings, command)
