"""How strong the recovery attackers are: the floor, blur and mosaic under one AttackSettings preset, with times.

Blur (radius 12) and mosaic (block 24) keep much of the image, so a working attacker recovers them far above the
information-free floor; an attack that does not is too weak to say anything about PixelFade (leakage.py). They
need no Re-ID model, so this runs on a dataset alone. Pairs are made on the fly from augmented originals (the
attacker holds the black box; pixel filters are cheap), as in the suite. ``--attackers`` adds registered attackers
(evaluation/attackers.py) at ``--attacker-size``; those holding a Re-ID model use ``--model``, and the feature
decoder also gives the second floor (what the clean images' features give it).

    nice -n 10 python bench/bench_attack_strength.py --data cuhk01 --root ../shared/data/cuhk01 \\
        --size 256 128 --preset strong --out bench/results/attack_strength_cuhk01_cpu.csv

--set FIELD=VALUE overrides one AttackSettings field (repeatable), e.g. --set epochs=4 --set width=16.
The CSV is the long format of bench/common.py: per method and attacker, rows of psnr, ssim and leakage over the
floor, and the seconds each took.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from pixelfade_fast.data.datasets import DATASETS, read_dataset
from pixelfade_fast.data.images import load_images
from pixelfade_fast.evaluation.attack import prior_floor, score_images
from pixelfade_fast.evaluation.attack_settings import ATTACK_PRESETS, AttackSettings, attack_preset
from pixelfade_fast.evaluation.attacker_sizes import ATTACKER_SIZES
from pixelfade_fast.evaluation.attackers import ATTACKERS, AttackJob, check_attackers, default_attackers
from pixelfade_fast.evaluation.leakage import best_of
from pixelfade_fast.evaluation.methods import METHODS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402

CONTROLS = ("blur", "mosaic")
BENCH = "attack_strength"


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


def _rows(case: str, attacker: str, scores: dict, floor: dict | None, seconds: float | None, device, config: dict):
    """The long-format rows of one attacker on one case: psnr, ssim, their leakage over ``floor``, seconds."""
    rows = [measurement(BENCH, case, attacker, "psnr", "dB", scores["psnr"], device=device, config=config),
            measurement(BENCH, case, attacker, "ssim", "", scores["ssim"], device=device, config=config)]
    if floor is not None:
        rows += [measurement(BENCH, case, attacker, "leakage_psnr", "dB", scores["psnr"] - floor["psnr"],
                             device=device, config=config),
                 measurement(BENCH, case, attacker, "leakage_ssim", "", scores["ssim"] - floor["ssim"],
                             device=device, config=config)]
    for name, value in scores.get("extra", {}).items():
        rows.append(measurement(BENCH, case, attacker, name, "dB" if name.endswith("psnr") else "", value,
                                device=device, config=config))
    if seconds is not None:
        rows.append(measurement(BENCH, case, attacker, "train_and_score_time", "s", seconds, device=device,
                                config=config))
    return rows


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, choices=list(DATASETS))
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--preset", default="strong", choices=sorted(ATTACK_PRESETS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--max-test", type=int, default=None, help="score on this many test images (seeded)")
    parser.add_argument("--methods", default=",".join(CONTROLS))
    parser.add_argument("--attackers", default="", help="registered attackers added to the default ones")
    parser.add_argument("--attacker-size", default="cpu", choices=ATTACKER_SIZES)
    parser.add_argument("--model", help="the Re-ID model the added attackers hold (a --model SPEC)")
    parser.add_argument("--mean-floor-only", action="store_true",
                        help="skip training the noise U-Net floor (quick experiments; the floor is then the mean "
                             "image alone, a lower bound of the real floor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True, help="long-format CSV (bench/common.py)")
    args = parser.parse_args(argv)
    try:
        settings = attack_preset(args.preset, **dict(parse_override(o) for o in args.overrides))
        added = check_attackers(a.strip() for a in args.attackers.split(",") if a.strip())
        split = read_dataset(args.data, args.root)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}")
    if any(ATTACKERS[a].needs_model == "other" for a in added):
        raise SystemExit("error: this bench gives the attackers one model (--model); add the authorised-model "
                         "variants (adversarial, feature_decoder)")
    if any(ATTACKERS[a].needs_model for a in added) and not args.model:
        raise SystemExit("error: the attackers that hold a Re-ID model need --model SPEC")
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
    device = torch.device(args.device)
    models = {}
    if args.model:
        from pixelfade_fast.models.spec import load_model_spec

        models["authorised"] = load_model_spec(args.model, input_size=size).to(device)
    print(f"{len(train_records)} training pairs from {len({r.pid for r in train_records})} identities, "
          f"{len(test_records)} test images, {size[0]}x{size[1]}; {settings.describe()}", flush=True)
    config = dict(dataset=args.data, size=f"{size[0]}x{size[1]}", train_pairs=len(train_records),
                  test_images=len(test_records), preset=args.preset, settings=settings.describe(),
                  attacker_size=args.attacker_size, model=args.model or "", seed=args.seed,
                  floor="mean image only" if args.mean_floor_only else "noise U-Net and mean image")
    case = f"{args.data} {size[0]}x{size[1]}"
    if args.mean_floor_only:
        floor, seconds = _timed(lambda: best_of({"mean": score_images(train.mean(dim=0, keepdim=True), test)}))
    else:
        floor, seconds = _timed(lambda: prior_floor(train, test, settings, seed=args.seed, device=args.device,
                                                    progress=True))
    rows = [row for name, scores in floor["attackers"].items()
            for row in _rows(f"{case} floor", name, scores, None, seconds if name == "unet" else None, device,
                             config)]
    rows += _rows(f"{case} floor", "best", floor, None, None, device, config)
    print(f"floor: {floor['psnr']:.2f} dB ({floor['psnr_attacker']}) / {floor['ssim']:.3f} "
          f"({floor['ssim_attacker']}) ({seconds:.0f} s)", flush=True)
    floor.setdefault("shared", {})
    write_measurements(args.out, rows)  # after every case: a long run that is stopped keeps what it measured
    blank = AttackJob(train, test, test, settings, floor, seed=args.seed, device=device, models=models,
                      size=args.attacker_size, cache=floor["shared"])
    for name in added:
        if ATTACKERS[name].utility_floor is not None:
            scores, seconds = _timed(ATTACKERS[name].utility_floor, blank)
            rows += _rows(f"{case} clean features", name, scores, floor, seconds, device, config)
            print(f"{name} on the clean features (second floor): {scores['psnr']:.2f} dB / {scores['ssim']:.3f} "
                  f"({seconds:.0f} s)", flush=True)
            write_measurements(args.out, rows)
    for method in methods:
        protect = METHODS[method].protect  # a pixel filter: no model, seed or config
        job = dataclasses.replace(blank, protected_test=protect(None, test, args.seed, None).clamp(0, 1),
                                  protect_fn=lambda images, p=protect: p(None, images, 0, None))
        scores = {}
        # the added attackers first: a run stopped early keeps them (a report of the same size has the defaults')
        for name in (*added, *default_attackers()):
            scores[name], seconds = _timed(ATTACKERS[name].recover, job)
            rows += _rows(f"{case} {method}", name, scores[name], floor, seconds, device, config)
            print(f"{method}, {name}: {scores[name]['psnr']:.2f} dB / {scores[name]['ssim']:.3f} "
                  f"({scores[name]['psnr'] - floor['psnr']:+.2f} dB / {scores[name]['ssim'] - floor['ssim']:+.3f} "
                  f"over the floor; {seconds:.0f} s)", flush=True)
            write_measurements(args.out, rows)
        best = best_of(scores)
        rows += _rows(f"{case} {method}", "best", best, floor, None, device, config)
        print(f"{method}: best {best['psnr']:.2f} dB ({best['psnr_attacker']}) / {best['ssim']:.3f} "
              f"({best['ssim_attacker']})", flush=True)
        write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
