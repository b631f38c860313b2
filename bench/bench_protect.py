"""End-to-end benchmark: protect() images/s per fade-step backend, same model, images and seed.

The model's forward and backward dominate a PixelFade step; this shows how much of the end-to-end time the
fused step saves against the eager reference step, measured in the same run.

    python bench/bench_protect.py --device cuda --model osnet_x0_25 --images 512 --batch-size 128
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, triton_version, write_rows  # noqa: E402


def smooth_images(count: int, size: tuple[int, int], device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, size[0] // 16, size[1] // 16, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (images + 0.1 * torch.rand(count, 3, *size, generator=generator)).clamp(0, 1).to(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--weights", help="weights file (default: random init; timing only)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for the model")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = build_model(args.model, pretrained_path=args.weights, seed=0).to(device)
    images = smooth_images(args.images, model.input_size, device)
    config = pf.FadeConfig(steps=args.steps)  # paper defaults: 5 init and 5 final steps, so steps >= 10
    meta = {"device": device_name(device), "torch": torch.__version__, "triton": triton_version(),
            "date": datetime.date.today().isoformat(), "model": args.model, "images": args.images,
            "batch_size": args.batch_size, "steps": args.steps, "amp": args.amp}
    rows = []
    for backend, status in pf.backends().items():
        if not (status.cuda if device.type == "cuda" else status.cpu) or (backend == "triton" and device.type != "cuda"):
            continue
        pf.protect(model, images[: min(8, args.images)], pf.FadeConfig(steps=2, init_steps=1, final_steps=0),
                   seed=1, backend=backend, batch_size=8, amp=args.amp, progress=False)  # warm-up
        begin = time.perf_counter()
        result = pf.protect(model, images, config, seed=1, backend=backend, batch_size=args.batch_size,
                            amp=args.amp, progress=False)
        elapsed = time.perf_counter() - begin
        rows.append(dict(meta, backend=backend, seconds=round(elapsed, 3), images_per_s=round(args.images / elapsed, 2),
                         met_rate=round(result.met_rate, 4)))
        print(f"{backend:10s} {elapsed:8.2f} s {args.images / elapsed:9.2f} img/s met ε {result.met_rate:.1%}", flush=True)
    reference = next((r for r in rows if r["backend"] == "reference"), None)
    for row in rows:
        row["speedup_vs_reference"] = round(reference["seconds"] / row["seconds"], 3) if reference else ""
    if args.out:
        write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
