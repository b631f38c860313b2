"""Met-ε rate and mean steps against the backtracking rule's rise tolerance (FadeConfig.rise_tolerance).

Each run protects with the default FadeConfig changed in that field alone. Images are
protected in batches of 16 with seed 7 and uids = their index, as in bench_constraint.py, so a row here and
that benchmark's default row agree at the default tolerance.

    python bench/sweep_rise_tolerance.py --data cuhk01 --root ../shared/data/cuhk01 --test-ids 32 \\
        --model osnet_x0_25:runs/cuhk01/osnet_x0_25_cuhk01.safetensors --tolerances 0 0.01 0.02 0.05 0.1 0.2
    python bench/sweep_rise_tolerance.py --data synthped --root runs/synthped_dev --test-ids 20 \\
        --model osnet_x0_25 --tolerances 0 0.02 0.05 0.1 0.2

Rows (bench/common.py's long format, bench `rise_tolerance`, case `<data> <model>`, x = the tolerance): met_rate,
mean_steps and max_loss_over_epsilon (the worst image's final loss over its ε).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast import data
from pixelfade_fast.data.datasets import DATASETS, read_dataset
from pixelfade_fast.models.spec import load_model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_constraint import first_test_ids, protect_in_batches  # noqa: E402
from common import measurement, write_measurements  # noqa: E402

METRICS = {"met_rate": "fraction", "mean_steps": "steps", "max_loss_over_epsilon": "x"}  # metric -> unit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(DATASETS), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--model", required=True, help="a `pixelfade protect --model` spec")
    parser.add_argument("--test-ids", type=int, default=32)
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    parser.add_argument("--out", type=Path, help="CSV to write (rewritten after each tolerance)")
    args = parser.parse_args(argv)
    query, gallery = first_test_ids(read_dataset(args.data, args.root), args.test_ids)
    model = load_model_spec(args.model).eval()
    images = data.load_images([r.path for r in query + gallery], tuple(model.input_size))
    rows = []
    for tolerance in args.tolerances:
        outcome = protect_in_batches(model, images, pf.FadeConfig(rise_tolerance=tolerance), batch=16, seed=7)
        ratio, steps_all = outcome["final_loss"] / outcome["epsilon"], outcome["steps"].float()
        found = {"met_rate": round(float((ratio < 1).float().mean()), 4),
                 "mean_steps": round(float(steps_all.mean()), 1),
                 "max_loss_over_epsilon": round(float(ratio.max()), 3)}
        settings = {"images": images.shape[0], "is_default": tolerance == pf.FadeConfig().rise_tolerance,
                    "batch": 16, "seed": 7}
        rows += [measurement("rise_tolerance", f"{args.data} {args.model}", "pixelfade", metric, unit, found[metric],
                             device=torch.device("cpu"), x_name="rise_tolerance", x_value=tolerance, config=settings)
                 for metric, unit in METRICS.items()]
        print(f"tolerance {tolerance:5.3f}  met {found['met_rate']:6.1%}  steps {found['mean_steps']:6.1f}  "
              f"worst loss/ε {found['max_loss_over_epsilon']:.3f}", flush=True)
        if args.out:
            write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
