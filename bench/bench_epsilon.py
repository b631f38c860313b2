"""How often PixelFade meets ε with a real model, and how many steps it takes, for a few finishing settings.

For each configuration: the rate of images whose final loss is below ε, the median final loss, the median
number of steps until an image first measured L < ε (read from the paper schedule's decisions: in the main
phase an image does CO exactly when L >= ε), and the wall time per image.

    python bench/bench_epsilon.py --data cuhk01 --root ../shared/data/cuhk01 \\
        --weights runs/cuhk01/osnet_x0_25_cuhk01.safetensors --input-size 128 64 --images 64
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast import data, engine
from pixelfade_fast.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, write_rows  # noqa: E402

CONFIGS = {
    "paper (T=100)": pf.FadeConfig(),
    "paper + 20 finish steps": pf.FadeConfig(finish_steps=20),
    "paper + 50 finish steps": pf.FadeConfig(finish_steps=50),
    "paper, beta 0.02": pf.FadeConfig(beta=0.02),
    "released schedule": pf.FadeConfig(schedule="released"),
}


class DecisionRecorder:
    """An engine observer that keeps each step's do_co flags (on the device; read once after the loop)."""

    def __init__(self) -> None:
        self.do_co: list[torch.Tensor] = []

    def __call__(self, record: engine.StepRecord) -> None:
        self.do_co.append(record.flags.do_co.clone())


def first_step_below_epsilon(do_co: torch.Tensor, config: pf.FadeConfig) -> torch.Tensor:
    """Per image, the first main-phase step whose loss was below ε (do_co False); T when none was."""
    steps = torch.arange(do_co.shape[0]).unsqueeze(1)
    main = (steps >= config.init_steps) & (steps < config.steps - config.final_steps)
    below = main & ~do_co.cpu()
    return torch.where(below, steps, config.steps).min(dim=0).values


def run(model, images: torch.Tensor, config: pf.FadeConfig, backend: str, seed: int) -> dict:
    recorder = DecisionRecorder()
    begin = time.perf_counter()
    result = pf.protect(model, images, config, seed=seed, backend=backend, batch_size=images.shape[0],
                        observer=recorder, progress=False)
    elapsed = time.perf_counter() - begin
    row = {"met_rate": round(result.met_rate, 4), "median_final_loss": round(float(result.final_loss.median()), 5),
           "s_per_image": round(elapsed / images.shape[0], 4)}
    if config.schedule == "paper":
        first = first_step_below_epsilon(torch.stack(recorder.do_co), config).float()
        row["median_steps_to_first_epsilon"] = float(first.median())
        row["never_below_epsilon_in_main_phase"] = round(float((first >= config.steps).float().mean()), 4)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["cuhk01", "market1501", "synthped"], default="cuhk01")
    parser.add_argument("--root", required=True)
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--input-size", type=int, nargs=2, default=[256, 128])
    parser.add_argument("--images", type=int, default=64, help="test images to protect (the first N of the gallery)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    reader = data.read_cuhk01 if args.data == "cuhk01" else data.read_market1501
    split = reader(args.root)
    size = tuple(args.input_size)
    model = build_model(args.model, pretrained_path=args.weights, input_size=size).to(args.device)
    images = data.load_images([r.path for r in split.gallery[: args.images]], size).to(args.device)
    rows = []
    for name, config in CONFIGS.items():
        row = {"device": device_name(torch.device(args.device)), "torch": torch.__version__,
               "date": datetime.date.today().isoformat(), "data": args.data, "model": args.model,
               "input_size": "x".join(map(str, size)), "images": images.shape[0], "config": name,
               **run(model, images, config, args.backend, seed=7)}
        rows.append(row)
        print(f"{name:28s} met ε {row['met_rate']:7.1%}  median loss {row['median_final_loss']:.4f}  "
              f"{row['s_per_image']:.3f} s/img  first<ε {row.get('median_steps_to_first_epsilon', '-')}", flush=True)
    if args.out:
        write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
