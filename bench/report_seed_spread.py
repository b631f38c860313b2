"""How much of a report's PixelFade utility figures is the protection seed? p→p mAP kept and met ε of the test
images of `pixelfade evaluate` (the same seeded choice of --max-test-ids identities, the same protection call),
over protection seeds and rise tolerances of the backtracking rule.

`pixelfade evaluate --seed S` protects its test images with seed 2·S+1, so seed 1 reproduces the default
report's figures. Only the test images are protected and no attack is trained, so a row costs one protection
of the query and gallery. The CUHK01 report's spread (docs/results/README.md):

    python bench/report_seed_spread.py --data cuhk01 --root ../shared/data/cuhk01 --max-test-ids 50 \\
        --model osnet_x0_25:runs/cuhk01/osnet_x0_25_cuhk01.safetensors --seeds 1 2 3 --tolerances 0 0.05 \\
        --out bench/results/report_seed_spread_cuhk01_cpu.csv

Rows (bench/common.py's long format, bench `seed_spread`, case `<data> <model>`, provider `pixelfade_paper`,
x = the protection seed): met_rate, mAP_clean and mAP_kept, with the rise tolerance in the config column.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pixelfade_fast import data
from pixelfade_fast.data.datasets import DATASETS, limit_test_ids, read_dataset
from pixelfade_fast.config import FadeConfig
from pixelfade_fast.engine import extract_features
from pixelfade_fast.engine.features import per_image_loss
from pixelfade_fast.evaluation.baselines import pixelfade
from pixelfade_fast.models.spec import load_model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_constraint import query_gallery_map  # noqa: E402
from common import measurement, write_measurements  # noqa: E402

METRICS = {"met_rate": "fraction", "mAP_clean": "mAP", "mAP_kept": "fraction"}  # metric -> unit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(DATASETS), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--model", required=True, help="a `pixelfade protect --model` spec")
    parser.add_argument("--max-test-ids", type=int, help="as `pixelfade evaluate --max-test-ids`")
    parser.add_argument("--identity-seed", type=int, default=0, help="`pixelfade evaluate --seed` (default: 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="protection seeds")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[FadeConfig().rise_tolerance])
    parser.add_argument("--out", type=Path, help="CSV to write (rewritten after each row)")
    args = parser.parse_args(argv)
    split = limit_test_ids(read_dataset(args.data, args.root), args.max_test_ids, args.identity_seed)
    query, gallery = split.query, split.gallery
    model = load_model_spec(args.model).eval()
    images = data.load_images([r.path for r in query + gallery], tuple(model.input_size))
    original = extract_features(model, images)
    clean_map = query_gallery_map(original, query, gallery)
    rows = []
    for seed in args.seeds:
        for tolerance in args.tolerances:
            config = FadeConfig(rise_tolerance=tolerance)
            protected = pixelfade(model, images, config, schedule="paper", seed=seed).clamp(0, 1)
            features = extract_features(model, protected)
            found = {"met_rate": FadeConfig().met_epsilon_rate(per_image_loss(features, original), original),
                     "mAP_clean": clean_map, "mAP_kept": query_gallery_map(features, query, gallery) / clean_map}
            settings = {"query": len(query), "gallery": len(gallery), "rise_tolerance": tolerance}
            rows += [measurement("seed_spread", f"{args.data} {args.model}", "pixelfade_paper", metric, unit,
                                 round(found[metric], 4), device=torch.device("cpu"), x_name="seed", x_value=seed,
                                 config=settings) for metric, unit in METRICS.items()]
            print(f"seed {seed}  tolerance {tolerance:5.3f}  met {found['met_rate']:6.1%}  mAP kept "
                  f"{found['mAP_kept']:.3f}", flush=True)
            if args.out:
                write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
