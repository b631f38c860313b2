"""`make demo`: the main job on a bundled sample folder, then a privacy check, on 2 CPU cores.

1. The sample: a small SynthPed split (synthetic pedestrians drawn deterministically by the SynthPed generator,
   the bundled model's world, seed 2024): a gallery folder, a query folder and the attacker's public images.
2. The main job, run as a user runs it: ``pixelfade protect GALLERY OUT/protected --model osnet_x0_25``
   (the bundled OSNet-x0.25, 128x64, trained on SynthPed only): protected PNGs, manifest.jsonl and run.json; then
   OUT/before_after.png (originals above their protected images) and Re-ID of the original queries against the
   protected gallery with the same model.
3. The privacy check: the attacker protects public SynthPed images (other identities) with the same command and
   trains a U-Net to undo the protection (the ``demo`` attack preset), then recovers the protected gallery. Blur,
   the control, is attacked the same way; an attacker without information (U-Net on noise, the mean image) is the
   floor. The verdict (evaluation/leakage.py) is conclusive when the attack recovers blur clearly above the floor.
   OUT/privacy.json holds the figures.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from .cli import main as pixelfade
from .config import FadeConfig
from .data import generate_synthped, load_images, read_market1501
from .data.records import Record
from .engine import extract_features
from .evaluation.attack import run_attack
from .evaluation.attack_settings import attack_preset
from .evaluation.leakage import attack_verdict
from .evaluation.report import image_grid
from .evaluation.reid_metrics import evaluate_reid
from .evaluation.suite import METHODS, SuiteSettings, attack_floor
from .gallery.manifest import Manifest
from .models.spec import BUNDLED, load_model_spec
from .training.demo import DEMO_MODEL, DEMO_SYNTHPED

# The bundled model's SynthPed world (seed 2024, the same two cameras). Train identities 1..12 are the attacker's
# public images (24 pairs); the gallery and queries are the next 12 identities (disjoint from the attacker's), one
# image per identity and camera. Protection is most of the demo's time, so the pairs are few and the attack trains
# long on them.
SAMPLE = dict(num_ids_train=12, num_ids_test=12, images_per_id_per_cam=1, num_cams=2, size=(128, 64),
              seed=DEMO_SYNTHPED["seed"], queries_per_id_per_cam=1)
CONTROL = "blur"
BEFORE_AFTER_COLUMNS = 8
ATTACK_SEED = 0
# The demo preset trained longer in smaller batches (64 epochs of batch 4): on 24 pairs it recovered blur at
# +9.0 dB / +0.145 SSIM over the floor (conclusive; 32 pairs: +9.4 dB / +0.144); the preset as it is (8 epochs of
# batch 16) reached +2.1 dB / -0.19 SSIM on 64 pairs and 24 epochs +7.0 dB / +0.026 SSIM (inconclusive), measured
# on this sample's SynthPed world at one CPU thread.
DEMO_ATTACK = dict(epochs=64, batch_size=4)


def _log(message: str) -> None:
    print(message, flush=True)


def protect_folder_cli(in_dir: Path, out_dir: Path, device: str, options: tuple[str, ...] = ()) -> None:
    """``pixelfade protect IN OUT --model osnet_x0_25``, in this process, as a user types it; a run of an earlier
    demo in OUT is replaced. The command's own thread setting is undone afterwards for the attack."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    argv = ["protect", str(in_dir), str(out_dir), "--model", DEMO_MODEL, "--device", device, "--no-progress",
            *options]
    _log("$ pixelfade " + " ".join(argv))
    threads = torch.get_num_threads()
    try:
        status = pixelfade(argv)
    finally:
        torch.set_num_threads(threads)
    if status != 0:
        raise SystemExit(f"error: pixelfade protect exited with {status}")


def protected_pixels(in_dir: Path, out_dir: Path, records: list[Record], size: tuple[int, int]) -> torch.Tensor:
    """The gallery command's outputs of ``records`` (inputs under ``in_dir``), in their order, via the manifest."""
    outputs = {entry.path: entry.output for entry in Manifest(out_dir / "manifest.jsonl").read()}
    names = [Path(r.path).relative_to(in_dir).as_posix() for r in records]
    missing = [name for name in names if outputs.get(name) is None]
    if missing:
        raise SystemExit(f"error: {out_dir} lists no output for {', '.join(missing)}")
    return load_images([out_dir / outputs[name] for name in names], size)


def write_before_after(originals: torch.Tensor, protected: torch.Tensor, path: Path) -> None:
    count = min(BEFORE_AFTER_COLUMNS, originals.shape[0])
    image_grid({"original": originals[:count], "protected": protected[:count]}).save(path)


def reid_check(model, split, gallery: torch.Tensor, protected: torch.Tensor, size) -> dict:
    """mAP / rank-1 of the original queries against the original and the protected gallery."""
    queries = extract_features(model, load_images([r.path for r in split.query], size))
    ids = dict(q_pids=[r.pid for r in split.query], q_camids=[r.camid for r in split.query],
               g_pids=[r.pid for r in split.gallery], g_camids=[r.camid for r in split.gallery])
    return {name: evaluate_reid(queries, ids["q_pids"], ids["q_camids"], extract_features(model, pixels),
                                ids["g_pids"], ids["g_camids"])
            for name, pixels in (("original->original", gallery), ("original->protected", protected))}


def privacy_check(model, attack, test: torch.Tensor, protected_test: torch.Tensor, train: torch.Tensor,
                  protected_train: torch.Tensor) -> dict:
    """The same attack on PixelFade (the command's outputs) and on blur (the control), against one floor."""
    settings = SuiteSettings(methods=("pixelfade", CONTROL), attack=attack, seed=ATTACK_SEED, known_noise=False)
    started = time.perf_counter()
    floor = attack_floor(train, test, settings)
    timings = {"floor_s": time.perf_counter() - started}
    kw = dict(floor=floor, seed=ATTACK_SEED, device=test.device, progress=None)
    control = METHODS[CONTROL].protect  # a pixel filter: ignores the seed and the PixelFade config
    privacy = {}
    for method in settings.methods:
        started = time.perf_counter()
        _log(f"[{method}] recovery attack")
        if method == CONTROL:  # a pixel filter: the attacker applies it afresh to every augmented batch
            result = run_attack(None, train, control(model, test, 0, FadeConfig()), test, attack,
                                protect_fn=lambda images: control(model, images, 0, FadeConfig()), **kw)
        else:
            result = run_attack(protected_train, train, protected_test, test, attack, **kw)
        privacy[method] = {key: value for key, value in result.items() if isinstance(value, (int, float, str))}
        timings[f"{method}_s"] = time.perf_counter() - started
    return {"attack": attack.describe(), "floor": {k: floor[k] for k in ("psnr", "ssim", "psnr_attacker",
                                                                         "ssim_attacker")},
            "privacy": privacy, "verdict": attack_verdict(privacy), "timings": timings}


def run_demo(out: Path, device: str, attack, sample: dict = SAMPLE, protect_options: tuple[str, ...] = ()) -> dict:
    """The three parts above into ``out``; returns what privacy.json holds. ``sample`` (generate_synthped
    arguments) and ``protect_options`` (extra ``pixelfade protect`` options) let the tests run a small one."""
    started = time.perf_counter()
    sample_dir = out / "sample"
    if not (sample_dir / "bounding_box_test").is_dir():
        _log(f"1. sample folder: generating SynthPed pedestrians into {sample_dir}")
        generate_synthped(sample_dir, **sample)
    split = read_market1501(sample_dir)
    gallery_dir, public_dir = sample_dir / "bounding_box_test", sample_dir / "bounding_box_train"
    _log(f"2. the main job: protecting the gallery folder {gallery_dir} ({len(split.gallery)} images)")
    protect_folder_cli(gallery_dir, out / "protected", device, protect_options)
    model = load_model_spec(DEMO_MODEL).to(device)
    size = tuple(model.input_size)
    gallery = load_images([r.path for r in split.gallery], size).to(device)
    protected = protected_pixels(gallery_dir, out / "protected", split.gallery, size).to(device)
    write_before_after(gallery.cpu(), protected.cpu(), out / "before_after.png")
    reid = reid_check(model, split, gallery, protected, size)
    main_job_s = time.perf_counter() - started

    _log(f"3. privacy check: the attacker protects {len(split.train)} public images with the same command")
    protect_folder_cli(public_dir, out / "attacker", device, protect_options)
    public = load_images([r.path for r in split.train], size).to(device)
    public_protected = protected_pixels(public_dir, out / "attacker", split.train, size).to(device)
    check = privacy_check(model, attack, gallery, protected, public, public_protected)
    check.update(reid=reid, sample={"gallery": len(split.gallery), "query": len(split.query),
                                    "attacker_pairs": len(split.train), "input_size": list(size)},
                 timings={"main_job_s": main_job_s, **check["timings"],
                          "total_s": time.perf_counter() - started})
    (out / "privacy.json").write_text(json.dumps(check, indent=2))
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelfade_fast.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not BUNDLED[DEMO_MODEL].exists():
        print(f"error: bundled weights {BUNDLED[DEMO_MODEL]} are missing (scripts/train_demo_model.py makes them)",
              file=sys.stderr)
        return 1
    check = run_demo(args.out, args.device, attack_preset("demo", **DEMO_ATTACK))
    _print_summary(args.out, check)
    return 0


def _print_summary(out: Path, check: dict) -> None:
    reid, floor, verdict = check["reid"], check["floor"], check["verdict"]
    oo, op = reid["original->original"], reid["original->protected"]
    _log("\nRe-ID, original queries against the gallery (bundled model): "
         f"original mAP {oo['mAP']:.1%} rank-1 {oo['rank1']:.1%}; protected mAP {op['mAP']:.1%} "
         f"rank-1 {op['rank1']:.1%}")
    _log(f"recovery attack trained on {check['sample']['attacker_pairs']} pairs ({check['attack']}); floor "
         f"{floor['psnr']:.2f} dB / {floor['ssim']:.3f} SSIM")
    for method, p in check["privacy"].items():
        _log(f"  {method:9s} trained U-Net {p['unet_psnr']:.2f} dB / {p['unet_ssim']:.3f} SSIM "
             f"({p['unet_leakage_psnr']:+.2f} dB / {p['unet_leakage_ssim']:+.3f} over the floor); best attacker "
             f"{p['leakage_psnr']:+.2f} dB / {p['leakage_ssim']:+.3f}")
    _log(f"attack verdict: {verdict['status']}: {verdict['reason']}")
    _log(f"\noutputs in {out}/: protected/ (PNGs, manifest.jsonl, run.json), before_after.png, privacy.json "
         f"({check['timings']['total_s']:.0f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
