"""The authors' loop shape vs the drop-in compat object on the same model and batches (issue 24).

Both protect the same batch of images in the model's normalised space with their defaults (max_iter 100, batch
20): ``official_loop`` is the official-style loop of bench/e2e_loops.py (the released code's shape, written from
its description), ``compat_released`` is ``pixelfade_fast.compat.released.PixelFade.protect_image`` (our engine,
released schedule; a whole call, model preparation included). The two are timed alternately in one process, A B A
B ..., and the ratio row is the median of the per-pair ratios official / compat. Images: smooth random crops (the
cost of a step does not depend on the content). Rows: bench/common.py's long format.

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python bench/bench_compat.py --out bench/results/compat_cpu.csv
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from pixelfade_fast.compat.released import OPTION_DEFAULTS, PixelFade, released_options
from pixelfade_fast.input_space import InputSpace
from pixelfade_fast.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402
from e2e_loops import official_style_loop  # noqa: E402


def smooth_images(count: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, size[0] // 16, size[1] // 16, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (images + 0.1 * torch.rand(count, 3, *size, generator=generator)).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=OPTION_DEFAULTS["batch_size"])
    parser.add_argument("--max-iter", type=int, default=OPTION_DEFAULTS["max_iter"])
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs (after one untimed warm-up pair)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", type=Path, default=Path("bench/results/compat_cpu.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    size = tuple(args.size)
    model = build_model(args.model, seed=0, input_size=size).eval()
    data = InputSpace.of(model).normalise(smooth_images(args.batch, size))
    options = released_options(max_iter=args.max_iter, batch_size=args.batch)
    compat = PixelFade(options, None, size, seed=1, backend=args.backend)

    def run_official() -> None:
        official_style_loop(model, data, args.max_iter, epsilon=options.epsilon, alpha=options.momentum_w,
                            beta=options.beta, beta_unsat=options.beta_temp, num_masks=options.fade_num_iter,
                            warmup=options.warmup_iter)
        model.requires_grad_(True)

    def run_compat() -> None:
        compat.protect_image(model, data)

    times: dict[str, list[float]] = {"official_loop": [], "compat_released": []}
    for repeat in range(args.repeats + 1):
        for name, run in (("official_loop", run_official), ("compat_released", run_compat)):
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if repeat:  # the first pair warms up
                times[name].append(elapsed)
            print(f"{'warm-up' if not repeat else f'repeat {repeat}'} {name}: {elapsed:.2f} s", flush=True)
    config = {"model": args.model, "size": list(size), "max_iter": args.max_iter, "backend": args.backend,
              "interleaved": True, "images": "smooth random"}
    case = f"{args.model}_{size[0]}x{size[1]}"
    rows = [measurement("compat", case, name, "time_per_batch", "s", values, device=device, x_name="batch",
                        x_value=args.batch, config=config) for name, values in times.items()]
    ratios = [a / b for a, b in zip(times["official_loop"], times["compat_released"])]
    rows.append(measurement("compat", case, "compat_released", "speedup_vs_official_loop", "x", ratios,
                            device=device, x_name="batch", x_value=args.batch, config=config))
    print(f"official / compat: median {statistics.median(ratios):.2f}x over {len(ratios)} pairs")
    write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
