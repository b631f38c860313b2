"""How strong the recovery attack is: the floor, blur and mosaic under one AttackSettings preset, with times.

Blur (radius 12) and mosaic (block 24) keep much of the image, so a working attacker recovers them far above the
information-free floor; an attack that does not is too weak to say anything about PixelFade (leakage.py). They
need no Re-ID model, so this runs on a dataset alone. Pairs are made on the fly from augmented originals (the
attacker holds the black box; pixel filters are cheap), as in the suite.

    nice -n 10 python bench/bench_attack_strength.py --data cuhk01 --root ../shared/data/cuhk01 \\
        --size 256 128 --preset strong --out bench/results/attack_strength_cuhk01_cpu.csv

--set FIELD=VALUE overrides one AttackSettings field (repeatable), e.g. --set epochs=4 --set width=16.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
from pathlib import Path

import torch

from pixelfade_fast.data.datasets import DATASETS, read_dataset
from pixelfade_fast.data.images import load_images
from pixelfade_fast.evaluation.attack import prior_floor, run_attack, score_images
from pixelfade_fast.evaluation.attack_settings import ATTACK_PRESETS, AttackSettings, attack_preset
from pixelfade_fast.evaluation.methods import METHODS
from pixelfade_fast.evaluation.leakage import best_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ops import device_name, write_rows  # noqa: E402

CONTROLS = ("blur", "mosaic")


def parse_override(text: str) -> tuple[str, object]:
    """FIELD=VALUE with VALUE read as the field's type (int, float, bool, str, or 'none')."""
    name, _, raw = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(AttackSettings)}
    if name not in fields or not raw:
        raise SystemExit(f"error: --set needs FIELD=VALUE with FIELD one of {', '.join(fields)}, got {text!r}")
    current = getattr(AttackSettings(), name)
    if raw.lower() == "none":
        return name, None
    if name == "crop":
        try:
            height, width = (int(v) for v in raw.lower().split("x"))
        except ValueError:
            raise SystemExit(f"error: --set crop needs HxW (e.g. 128x64) or none, got {raw!r}")
        return name, (height, width)
    if isinstance(current, bool):
        return name, raw.lower() in ("1", "true", "yes")
    for kind in (int, float):
        if isinstance(current, kind) or (current is None and kind is int):
            try:
                return name, kind(raw)
            except ValueError:
                raise SystemExit(f"error: --set {name} needs a number, got {raw!r}")
    return name, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, choices=list(DATASETS))
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--preset", default="strong", choices=sorted(ATTACK_PRESETS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--max-test", type=int, default=None, help="score on this many test images (seeded)")
    parser.add_argument("--methods", default=",".join(CONTROLS))
    parser.add_argument("--mean-floor-only", action="store_true",
                        help="skip training the noise U-Net floor (quick experiments; the floor is then the mean "
                             "image alone, a lower bound of the real floor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True, help="CSV, one row per attacked method and the floor")
    args = parser.parse_args(argv)
    try:
        settings = attack_preset(args.preset, **dict(parse_override(o) for o in args.overrides))
        split = read_dataset(args.data, args.root)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS or not METHODS[m].pixel_filter]
    if unknown:
        raise SystemExit(f"error: unknown methods {unknown}; this bench runs pixel filters such as {CONTROLS}")
    generator = torch.Generator().manual_seed(args.seed)
    train_records = split.train
    if settings.max_pairs is not None and len(train_records) > settings.max_pairs:
        keep = sorted(torch.randperm(len(train_records), generator=generator)[:settings.max_pairs].tolist())
        train_records = [train_records[i] for i in keep]
    test_records = split.query + split.gallery
    if args.max_test is not None and len(test_records) > args.max_test:
        keep = sorted(torch.randperm(len(test_records), generator=generator)[:args.max_test].tolist())
        test_records = [test_records[i] for i in keep]
    size = tuple(args.size)
    train = load_images([r.path for r in train_records], size)
    test = load_images([r.path for r in test_records], size)
    print(f"{len(train_records)} training pairs from {len({r.pid for r in train_records})} identities, "
          f"{len(test_records)} test images, {size[0]}x{size[1]}; {settings.describe()}", flush=True)
    meta = dict(date=datetime.date.today().isoformat(), device=device_name(torch.device(args.device)),
                dataset=args.data, size=f"{size[0]}x{size[1]}", train_pairs=len(train_records),
                test_images=len(test_records), preset=args.preset, settings=settings.describe())
    started = time.perf_counter()
    if args.mean_floor_only:
        floor = best_of({"mean": score_images(train.mean(dim=0, keepdim=True), test)})
    else:
        floor = prior_floor(train, test, settings, seed=args.seed, device=args.device, progress=True)
    unet_floor = floor["attackers"].get("unet", {"psnr": float("nan"), "ssim": float("nan")})
    rows = [dict(meta, method="floor", seconds=round(time.perf_counter() - started, 1),
                 unet_psnr=unet_floor["psnr"], unet_ssim=unet_floor["ssim"],
                 mean_psnr=floor["attackers"]["mean"]["psnr"], mean_ssim=floor["attackers"]["mean"]["ssim"],
                 best_psnr=floor["psnr"], best_ssim=floor["ssim"], psnr_attacker=floor["psnr_attacker"],
                 ssim_attacker=floor["ssim_attacker"])]
    print(f"floor: U-Net {rows[0]['unet_psnr']:.2f} dB / {rows[0]['unet_ssim']:.3f}, mean image "
          f"{rows[0]['mean_psnr']:.2f} dB / {rows[0]['mean_ssim']:.3f} ({rows[0]['seconds']} s)", flush=True)
    write_rows(args.out, rows)  # after every row: a long run that is stopped keeps what it measured
    for method in methods:
        started = time.perf_counter()
        protect = METHODS[method].protect  # a pixel filter: no model, seed or config
        protected_test = protect(None, test, args.seed, None).clamp(0, 1)
        result = run_attack(None, train, protected_test, test, settings, seed=args.seed, device=args.device,
                            progress=True, floor=floor, protect_fn=lambda images, p=protect: p(None, images, 0, None))
        rows.append(dict(meta, method=method, seconds=round(time.perf_counter() - started, 1),
                         unet_psnr=result["unet_psnr"], unet_ssim=result["unet_ssim"],
                         protected_psnr=result["visual_psnr"], protected_ssim=result["visual_ssim"],
                         best_psnr=result["psnr"], best_ssim=result["ssim"], psnr_attacker=result["psnr_attacker"],
                         ssim_attacker=result["ssim_attacker"], unet_leakage_psnr=result["unet_leakage_psnr"],
                         unet_leakage_ssim=result["unet_leakage_ssim"], floor_psnr=floor["psnr"],
                         floor_ssim=floor["ssim"]))
        row = rows[-1]
        print(f"{method}: U-Net {row['unet_psnr']:.2f} dB / {row['unet_ssim']:.3f} "
              f"({row['unet_leakage_psnr']:+.2f} dB / {row['unet_leakage_ssim']:+.3f} over the floor), protected "
              f"image {row['protected_psnr']:.2f} dB / {row['protected_ssim']:.3f} ({row['seconds']} s)", flush=True)
        write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
