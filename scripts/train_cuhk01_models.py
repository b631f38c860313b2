"""Reproduce the CUHK01-trained models of the constraint benchmark (bench/bench_constraint.py).

    python scripts/train_cuhk01_models.py --root ../shared/data/cuhk01 [--models osnet_x0_25 osnet_x1_0]
        [--out-dir runs/cuhk01_256x128] [--threads 1]

Trains each recipe with our trainer on CUHK01's 485 training identities at 256x128 and writes
OUT_DIR/<recipe>.safetensors (the test scores are in its metadata) plus OUT_DIR/summary.json. The weights are
not committed (CUHK01 is for research use only); on the CPU the same torch version and thread count give the
same weights. Times on this 2-core CPU at 1 thread: osnet_x0_25, 20 epochs, about 40 minutes; osnet_x1_0,
3 epochs, about 40 minutes (a short run: it is there for its feature scale, not for its accuracy).
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

# name -> (model, training settings)
RECIPES = {
    "osnet_x0_25_cuhk01": ("osnet_x0_25", dict(epochs=20, warmup_epochs=2)),
    "osnet_x1_0_cuhk01": ("osnet_x1_0", dict(epochs=3, warmup_epochs=1)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the CUHK01 folder (campus/ inside)")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES))
    parser.add_argument("--out-dir", type=Path, default=Path("runs/cuhk01_256x128"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    split = read_cuhk01(args.root)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = args.out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.recipes:
        model_name, settings = RECIPES[name]
        out = args.out_dir / f"{name}.safetensors"
        begin = time.perf_counter()
        _, metrics = train_reid(model_name, split, checkpoint=out, input_size=(256, 128), seed=0,
                                checkpoint_metadata={"train_data": "cuhk01"}, **settings)
        summary[name] = {"model": model_name, **settings, "threads": args.threads,
                         "seconds": round(time.perf_counter() - begin), "torch": torch.__version__,
                         **{k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}}
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{name}: {summary[name]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
