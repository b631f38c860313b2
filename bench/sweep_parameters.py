"""Parameter analysis of PixelFade (paper Fig. 5): sweep T, β, ε and I on a small seeded subset, write a CSV
(evaluation/sweep.py: SWEEP_COLUMNS) and draw the four panels from it.

    pixelfade synthped runs/synthped_dev --train-ids 200 --test-ids 20 --images-per-cam 1 --cams 2 \\
        --size 128 64 --seed 2024
    python bench/sweep_parameters.py --data synthped --root runs/synthped_dev --test-ids 12 \\
        --attack-train 64 --attack-preset demo --out docs/results/fig5/fig5_sweep_synthped.csv \\
        --figure docs/results/fig5/fig5_parameters_synthped.png
    python bench/sweep_parameters.py --plot docs/results/fig5/fig5_sweep_synthped.csv \\
        --figure docs/results/fig5/fig5_parameters_synthped.png     # redraw from the CSV only

Defaults: the bundled OSNet-x0.25 (or --model/--weights), FadeConfig() as the base, the values of
sweep.SWEEP_VALUES (--values NAME=V1,V2,... replaces one sweep), --test-ids 12 query identities (seeded, query and
gallery images of them), --attack-train 64 attacker training images (seeded), the demo attack preset, seed 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pixelfade_fast.data.datasets import DATASETS, limit_test_ids, read_dataset
from pixelfade_fast.config import FadeConfig
from pixelfade_fast.data.images import load_images
from pixelfade_fast.errors import UserError
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.figures import parameter_sweep_figure
from pixelfade_fast.evaluation.sweep import (SWEEP_PARAMETERS, SWEEP_VALUES, SweepData, check_values, read_sweep_csv,
                                             run_sweep, write_sweep_csv)
from pixelfade_fast.models.spec import load_model_spec


def parse_values(items: list[str]) -> dict[str, tuple]:
    values = dict(SWEEP_VALUES)
    for item in items:
        name, _, raw = item.partition("=")
        if name not in SWEEP_PARAMETERS or not raw:
            raise SystemExit(f"error: --values needs NAME=V1,V2,... with NAME one of {', '.join(SWEEP_PARAMETERS)}, "
                             f"got {item!r}")
        kind = type(SWEEP_VALUES[name][0])
        try:
            values[name] = tuple(kind(v) for v in raw.split(","))
        except ValueError:
            raise SystemExit(f"error: --values {name} needs {kind.__name__} values, got {raw!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plot", type=Path, help="only draw --figure from this sweep CSV")
    parser.add_argument("--figure", type=Path, required=True, help="PNG of the four panels")
    parser.add_argument("--title", default="", help="figure title (default: dataset and sizes)")
    parser.add_argument("--data", choices=list(DATASETS))
    parser.add_argument("--root")
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--weights")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--test-ids", type=int, default=12)
    parser.add_argument("--attack-train", type=int, default=64)
    parser.add_argument("--attack-preset", default="demo")
    parser.add_argument("--values", action="append", default=[], metavar="NAME=V1,V2,...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="sweep CSV to write")
    args = parser.parse_args(argv)
    if args.plot:
        try:
            rows = read_sweep_csv(args.plot)
            parameter_sweep_figure(rows, args.figure, title=args.title)
        except (OSError, ValueError) as error:
            raise SystemExit(f"error: {error}")
        print(f"wrote {args.figure}")
        return 0
    if not (args.data and args.root and args.out):
        raise SystemExit("error: a sweep needs --data, --root and --out (or --plot CSV to redraw a figure)")
    try:
        values = check_values(parse_values(args.values), FadeConfig())
        attack = attack_preset(args.attack_preset, max_pairs=args.attack_train)
        split = limit_test_ids(read_dataset(args.data, args.root), args.test_ids, args.seed)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}")
    try:
        model = load_model_spec(args.model, weights=args.weights, input_size=args.input_size).eval().to(args.device)
    except (UserError, ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}")
    size = tuple(model.input_size)
    train_records = split.train
    if len(train_records) > args.attack_train:
        keep = torch.randperm(len(train_records), generator=torch.Generator().manual_seed(args.seed))
        train_records = [train_records[i] for i in sorted(keep[:args.attack_train].tolist())]
    test_records = split.query + split.gallery
    sweep_data = SweepData(test=load_images([r.path for r in test_records], size).to(args.device),
                           num_query=len(split.query), pids=[r.pid for r in test_records],
                           camids=[r.camid for r in test_records],
                           train=load_images([r.path for r in train_records], size).to(args.device))
    print(f"{len(split.query)} queries, {len(split.gallery)} gallery, {len(train_records)} attacker training images "
          f"at {size[0]}x{size[1]}; attack: {attack.describe()}", flush=True)
    rows = run_sweep(model, sweep_data, values, attack, seed=args.seed, log=lambda line: print(line, flush=True))
    write_sweep_csv(rows, args.out)
    title = args.title or (f"{args.data}: {len(split.pids('query'))} query ids, {len(train_records)} attacker pairs, "
                           f"{args.attack_preset} attack")
    parameter_sweep_figure(rows, args.figure, title=title)
    print(f"wrote {args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
