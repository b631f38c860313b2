"""End-to-end PixelFade speed: the official-style loop, our loop in each configuration, and the floor.

Every row is ms per image for T steps (default 100) of one batch, from a measured set-up cost plus T times a
measured per-step cost (so a short timed run stands for T steps: every step of these loops costs the same),
with its ratio to the official-style loop (batch 20, fp32; bench/e2e_loops.py says what it does) and to the
floor of the same precision (forward + input-gradient backward, eager, nothing else). See docs/performance.md.

Variants ("impl" column): official (the released loop's shape), floor_fp32 / floor_bf16 (eager; channels_last on
CUDA; on the CPU also floor_fp32_channels_last, whose x_floor is against the contiguous floor), and ours_<backend>_<options>: fold (BatchNorm folded), compile (torch.compile of the model), graph (the
whole step captured in a CUDA graph), bf16 (autocast with an fp32 master image), eager (none of them).

    OMP_NUM_THREADS=1 taskset -c 0 python bench/bench_e2e.py --device cpu --models osnet_x0_25 --batches 16 32 \
        --out bench/results/e2e_cpu.csv
    python bench/bench_e2e.py --device cuda --batches 16 64 256 512 --out $OUT/e2e.csv --plot $OUT/e2e.png
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast.engine import Acceleration
from pixelfade_fast.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_meta, write_rows  # noqa: E402
from e2e_loops import OFFICIAL_BATCH, time_floor, time_official, time_ours  # noqa: E402

# Dense tensor-core peaks for the achieved-fraction column (NVIDIA's H100 SXM / H200 datasheets: 989 TFLOP/s bf16,
# 494 TF32). fp32 rows count against TF32: cuDNN runs fp32 convolutions on TF32 tensor cores by default.
PEAK_TFLOPS = {"H100": {"bf16": 989.0, "fp32": 494.0}, "H200": {"bf16": 989.0, "fp32": 494.0}}


def variants(device: torch.device) -> dict[str, tuple[str, Acceleration]]:
    """Our loop's configurations for this device: name -> (backend, options)."""
    cuda = device.type == "cuda"
    fast = "cpp" if pf.backends()["cpp"].cuda or not cuda else "triton"
    plain = Acceleration(fold_batchnorm=False, channels_last=cuda, cuda_graph=False)
    rows = {
        f"ours_{fast}_eager": (fast, plain),
        f"ours_{fast}_fold": (fast, Acceleration(fold_batchnorm=True, channels_last=cuda, cuda_graph=False)),
        f"ours_{fast}_fold_compile": (fast, Acceleration(fold_batchnorm=True, channels_last=cuda, compile=True,
                                                          cuda_graph=False)),
        "ours_reference_fold": ("reference", Acceleration(fold_batchnorm=True, channels_last=cuda, cuda_graph=False)),
    }
    if not cuda:  # channels_last is a CUDA default; on the CPU it is measured as an option
        rows[f"ours_{fast}_fold_channels_last"] = (fast, Acceleration(fold_batchnorm=True, channels_last=True))
        rows[f"ours_{fast}_fold_compile_channels_last"] = (fast, Acceleration(fold_batchnorm=True, channels_last=True,
                                                                              compile=True))
    if cuda:
        rows.update({
            f"ours_{fast}_fold_graph": (fast, Acceleration(fold_batchnorm=True, cuda_graph=True)),
            f"ours_{fast}_fold_bf16": (fast, Acceleration(fold_batchnorm=True, amp=True, cuda_graph=False)),
            f"ours_{fast}_fold_graph_bf16": (fast, Acceleration(fold_batchnorm=True, amp=True, cuda_graph=True)),
            f"ours_{fast}_fold_compile_graph_bf16": (fast, Acceleration(fold_batchnorm=True, amp=True, compile=True,
                                                                        cuda_graph=True)),
        })
        if pf.backends()["triton"].cuda and fast != "triton":
            rows["ours_triton_fold_graph"] = ("triton", Acceleration(fold_batchnorm=True, cuda_graph=True))
    return rows


def smooth_pixels(count: int, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, size[0] // 16, size[1] // 16, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (images + 0.1 * torch.rand(count, 3, *size, generator=generator)).clamp(0, 1).to(device)


def step_flops(model, pixels: torch.Tensor) -> float:
    """FLOPs of one forward + input-gradient backward of the batch (torch's own counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    leaf = pixels[:1].clone().requires_grad_(True)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval().requires_grad_(False)  # input gradient only, as in the loops
    with FlopCounterMode(display=False) as counter:
        model(leaf).square().sum().backward()
    for param, flag in flags:
        param.requires_grad_(flag)
    return counter.get_total_flops() * pixels.shape[0]


def peak_memory_mb(device: torch.device) -> float | str:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["osnet_x0_25", "osnet_x1_0", "agw_r50_nl"])
    parser.add_argument("--batches", nargs="+", type=int, default=[16])
    parser.add_argument("--input-size", nargs=2, type=int, default=[256, 128])
    parser.add_argument("--steps", type=int, default=100, help="T the rows stand for")
    parser.add_argument("--timed-steps", type=int, default=6, help="steps actually timed per row (after 2 warm)")
    parser.add_argument("--only", nargs="*", help="run only these impl names (default: all)")
    parser.add_argument("--budget", type=float, default=float("inf"), help="stop starting rows after this many s")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    size = tuple(args.input_size)
    started = time.perf_counter()
    rows: list[dict] = []
    wanted = (lambda name: args.only is None or name in args.only)
    for model_name in args.models:
        model = build_model(model_name, seed=0, input_size=size).to(device)
        mean, std = model.mean, model.std
        official = None
        if wanted("official"):
            pixels = smooth_pixels(OFFICIAL_BATCH, size, device)
            official = time_official(model, (pixels - mean) / std, args.timed_steps + 2)
            rows.append(_row(args, device, model_name, "official", official, None, None))
        for batch in args.batches:
            if time.perf_counter() - started > args.budget:
                print("budget spent: stopping", flush=True)
                break
            pixels = smooth_pixels(batch, size, device)
            flops = step_flops(model, pixels)
            floors = {}
            for precision, amp in (("fp32", False), ("bf16", True)):
                name = f"floor_{precision}"
                if precision == "bf16" and device.type != "cuda" or not wanted(name):
                    continue
                _reset_peak(device)
                floors[precision] = time_floor(model, (pixels - mean) / std, amp=amp,
                                               channels_last=device.type == "cuda", steps=args.timed_steps + 2)
                rows.append(_row(args, device, model_name, name, floors[precision], official, None, flops))
            if device.type == "cpu" and wanted("floor_fp32_channels_last"):  # the floor in the other CPU layout
                timing = time_floor(model, (pixels - mean) / std, amp=False, channels_last=True,
                                    steps=args.timed_steps + 2)
                rows.append(_row(args, device, model_name, "floor_fp32_channels_last", timing, official,
                                 floors.get("fp32"), flops))
            for name, (backend, options) in variants(device).items():
                if not wanted(name) or time.perf_counter() - started > args.budget:
                    continue
                _reset_peak(device)
                try:
                    timing = time_ours(model, pixels, backend, options, args.timed_steps + 2)
                except Exception as error:  # a configuration this machine cannot run: say so in the CSV
                    rows.append(dict(run_meta(device), model=model_name, impl=name, batch=batch,
                                     error=f"{type(error).__name__}: {error}"[:300]))
                    continue
                floor = floors.get("bf16" if options.amp else "fp32")
                rows.append(_row(args, device, model_name, name, timing, official, floor, flops))
            if args.out:
                write_rows(args.out, rows)
    if args.out:
        write_rows(args.out, rows)
    if args.plot:
        from plot_e2e import plot_e2e

        plot_e2e(rows, args.plot)
    return 0


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _row(args, device, model_name, impl, timing, official, floor, flops=None) -> dict:
    ms = timing.per_image_ms(args.steps)
    row = dict(run_meta(device), model=model_name, input_size="x".join(map(str, args.input_size)), impl=impl,
               batch=timing.batch, steps=args.steps, timed_steps=args.timed_steps, ms_per_image=round(ms, 3),
               step_ms_per_image=round(1000 * timing.step / timing.batch, 4), warmup_s=round(timing.warmup, 2),
               peak_mb=peak_memory_mb(device))
    if official is not None and impl != "official":
        row["x_official"] = round(official.per_image_ms(args.steps) / ms, 3)
    if floor is not None:
        row["vs_floor"] = round(ms / floor.per_image_ms(args.steps), 3)
    if flops and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak is not None:
            achieved = flops / timing.step / 1e12
            row["tflops"] = round(achieved, 1)
            row["frac_of_peak"] = round(achieved / peak["bf16" if "bf16" in impl else "fp32"], 4)
    line = "  ".join(f"{k}={row[k]}" for k in ("model", "impl", "batch", "ms_per_image", "x_official", "vs_floor")
                     if k in row)
    print(line, flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
