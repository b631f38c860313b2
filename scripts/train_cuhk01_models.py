"""Reproduce the CUHK01-trained models of the constraint benchmark (bench/bench_constraint.py).

    python scripts/train_cuhk01_models.py --root CUHK01_DIR [--recipes osnet_x0_25_cuhk01 osnet_x1_0_cuhk01]
        [--out-dir runs/cuhk01_256x128] [--threads 2]

Trains each recipe with our trainer on CUHK01's 485 training identities and writes
OUT_DIR/<recipe>.safetensors (256x128; the test scores are in its metadata) plus OUT_DIR/summary.json. A recipe
is a list of stages: most epochs at 128x64 (a quarter of the compute), then a short fine-tune at 256x128 that
starts from the previous stage's weights. The weights are not committed (CUHK01 is for research use only); on
the CPU the same torch version and thread count give the same weights. Times and scores: docs/results/constraint.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from pixelfade_fast.data import read_cuhk01
from pixelfade_fast.training import train_reid

FINAL_SIZE = (256, 128)
# name -> (model, stages); each stage is a set of train_reid settings, the last one at FINAL_SIZE.
RECIPES = {
    "osnet_x0_25_cuhk01": ("osnet_x0_25", [
        dict(input_size=(128, 64), epochs=60, lr=3e-3, warmup_epochs=5),
        dict(input_size=FINAL_SIZE, epochs=12, lr=1e-3, warmup_epochs=1),
    ]),
    "osnet_x1_0_cuhk01": ("osnet_x1_0", [
        dict(input_size=(128, 64), epochs=40, lr=2e-3, warmup_epochs=4),
        dict(input_size=FINAL_SIZE, epochs=6, lr=7e-4, warmup_epochs=1),
    ]),
}


def train_recipe(name: str, split, out_dir: Path) -> dict:
    """Run every stage of recipe ``name``; returns a summary of all stages with the last stage's test scores."""
    model_name, stages = RECIPES[name]
    previous, metrics, record = None, {}, {"model": model_name, "stages": []}
    for number, settings in enumerate(stages, 1):
        last = number == len(stages)
        out = out_dir / (f"{name}.safetensors" if last else f"{name}.stage{number}.safetensors")
        begin = time.perf_counter()
        _, metrics = train_reid(model_name, split, checkpoint=out, seed=0, init_weights=previous, evaluate=last,
                                checkpoint_metadata={"train_data": "cuhk01", "recipe": name}, **settings)
        record["stages"].append({**settings, "seconds": round(time.perf_counter() - begin)})
        previous = out
    record.update({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float) and k != "train_seconds"})
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the CUHK01 folder (campus/ inside)")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES))
    parser.add_argument("--out-dir", type=Path, default=Path("runs/cuhk01_256x128"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    split = read_cuhk01(args.root)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = args.out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.recipes:
        record = train_recipe(name, split, args.out_dir)
        summary[name] = {**record, "threads": args.threads, "torch": torch.__version__}
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{name}: {summary[name]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
