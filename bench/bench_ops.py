"""Benchmark of fade_step_: each backend against unfused eager and torch.compile baselines, and a copy.

Bandwidth is counted from the minimal bytes of a CO step: read xp, mom, grad and write xp, mom = 5 float32
values = 20 bytes per element. The copy row moves the same number of bytes (a copy of 2.5 float32 values per
element), measured in the same run, so `frac_of_copy` is the fraction of the bandwidth this device reaches.

Which images take which operation (`--flags`; in the row's case and config):
  co_pro   every image does CO and PRO (the init phase; the most work: a Philox word per element for the mask
           test, Box-Muller for the replaced fifth)
  co       every image does CO only (the main phase above ε, the final and finishing steps: most steps)
  mixed    each image does CO or PRO at random (the main phase once some images are below ε)

Baselines:
  eager_reference      pixelfade_fast.reference.fade_step_ (computes Philox with torch integer ops each step)
  eager_stored_noise   the same step with η and the mask ids precomputed once and read each step (what an
                       unfused loop that stores its noise does, like the authors' code)
  compiled_*           torch.compile of the above
Each fast backend is timed drawing the mask ids from the keys (`cpp`, `triton`) and reading them materialised
once per batch (`cpp_ids`, `triton_ids`: what protect() does; the ids are not counted in the 20 bytes). On
Hopper and later GPUs the cpp backend is also timed as `cpp_cluster[_ids]` (PIXELFADE_CUDA_STEP=cluster: grad
read once, kept in shared memory). `<backend>_noise` times fade_noise, the materialised η (4 bytes written per
element: its `gbps` counts those).

Keys (`--contracts`, `rng_contract` in the row's config): 2 derives them from a 256-bit seed (four words per image, the
counter's upper words in use), 1 as runs made before RNG contract 2 did (zero counter words); both run the same
kernels. `--only` keeps the named implementations (and the copy).

Rows (bench/common.py's long format, bench `ops`, case `<flags> <C>x<H>x<W>`, x = batch): per implementation
(provider) `time` (ms), `bandwidth` (GB/s), `frac_of_copy` and `speedup_vs_<baseline>` (x), each the median
over the reps of the per-rep values, ratios taken between samples of the same round.

    python bench/bench_ops.py --device cuda --batches 1 16 64 256 512 --flags co_pro co --out bench/results/ops_h200.csv
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import torch

import pixelfade_fast as pf
from pixelfade_fast import reference
from pixelfade_fast.step_args import BatchConstants, StepFlags, flat_step_args

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402

BYTES_PER_ELEMENT = 20
NOISE_BYTES_PER_ELEMENT = 4
FLAG_MIXES = ("co_pro", "co", "mixed")
BASELINES = ("eager_reference", "eager_stored_noise", "compiled_stored_noise", "compiled_reference")
V2_SEED = int.from_bytes(bytes(range(32)), "big")  # a fixed 256-bit seed: contract 2 refuses nothing below 2^256


class Candidate(NamedTuple):
    name: str
    step: Callable[[], object]
    env: dict  # environment variables set while it is timed
    bytes_per_element: int = BYTES_PER_ELEMENT


@contextlib.contextmanager
def environment(values: dict):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stored_noise_step(xp, mom, grad, do_co, do_pro, beta, mask_idx, noise, mask_ids, lo, hi, alpha: float):
    """An unfused PixelFade step (l1mean) with η and the mask ids read from memory."""
    per_image = (-1, 1, 1, 1)
    norm = grad.abs().flatten(1).mean(1).clamp_min(1e-12).reshape(per_image)
    co = do_co.reshape(per_image)
    mom.copy_(torch.where(co, alpha * mom + grad / norm, mom))
    stepped = torch.where(co, xp - beta.reshape(per_image) * mom, xp)
    replace = do_pro.reshape(per_image) & (mask_ids == mask_idx.reshape(per_image).to(mask_ids.dtype))
    replaced = torch.where(replace, noise, stepped)
    xp.copy_(torch.maximum(torch.minimum(replaced, hi.reshape(1, -1, 1, 1)), lo.reshape(1, -1, 1, 1)))


def timer(device: torch.device, fn, warmup: int, reps: int) -> float:
    """Median milliseconds of ``fn()`` (device events on CUDA, perf_counter on CPU) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
    else:
        for _ in range(reps):
            begin = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(samples)


def make_inputs(batch: int, shape: tuple[int, int, int], device: torch.device, seed: int, flag_mix: str,
                contract: int):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    do_co = torch.ones(batch, dtype=torch.bool)
    do_pro = torch.ones(batch, dtype=torch.bool)
    if flag_mix == "co":
        do_pro.fill_(False)
    elif flag_mix == "mixed":
        do_co = torch.rand(batch, generator=generator) < 0.5
        do_pro = ~do_co
    full = (batch, *shape)
    xp = torch.randn(full, generator=generator).to(device)
    mom = torch.randn(full, generator=generator).to(device)
    grad = torch.randn(full, generator=generator).to(device)
    keys = reference.derive_keys(V2_SEED + seed if contract == 2 else seed, range(batch), contract).to(device)
    flags = StepFlags(do_co.to(device), do_pro.to(device), torch.full((batch,), 0.01, device=device),
                      torch.randint(0, 5, (batch,), generator=generator, dtype=torch.int32).to(device))
    lo = torch.full((shape[0],), -2.2, device=device)
    hi = torch.full((shape[0],), 2.7, device=device)
    return xp, mom, grad, flags, BatchConstants(keys, lo, hi, alpha=0.6, num_masks=5)


def has_clusters(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


def candidates(device: torch.device, batch: int, shape, seed: int, flag_mix: str,
               compile_baselines: bool, contract: int) -> list[Candidate]:
    """Every implementation that can run on ``device``, on the same inputs."""
    xp, mom, grad, flags, constants = make_inputs(batch, shape, device, seed, flag_mix, contract)
    keys = constants.keys
    noise = reference.fade_noise(keys, shape)
    mask_ids = reference.fade_mask_ids(keys, shape, 5, False)
    with_ids = dataclasses.replace(constants, mask_ids=mask_ids)
    step = (xp, mom, grad, flags)
    flat_args = flat_step_args(*step, constants)  # the reference's own (backend) form
    out = []
    for name, status in pf.backends().items():
        usable = status.cuda if device.type == "cuda" else status.cpu
        if name == "triton" and device.type != "cuda":
            usable = False  # the interpreter is a test tool, not a benchmark
        if not usable:
            continue
        if name == "reference":
            out.append(Candidate(name, lambda: pf.ops.fade_step_(*step, constants, backend="reference"), {}))
            continue
        variants = [("", {})]
        if name == "cpp" and has_clusters(device):
            variants.append(("_cluster", {"PIXELFADE_CUDA_STEP": "cluster"}))
        for suffix, env in variants:
            out.append(Candidate(name + suffix, lambda name=name: pf.ops.fade_step_(*step, constants, backend=name),
                                 env))
            out.append(Candidate(name + suffix + "_ids", lambda name=name: pf.ops.fade_step_(
                *step, with_ids, backend=name), env))
        out.append(Candidate(name + "_noise", lambda name=name: pf.ops.fade_noise(keys, shape, backend=name), {},
                             NOISE_BYTES_PER_ELEMENT))
    stored_args = (xp, mom, grad, flags.do_co, flags.do_pro, flags.beta, flags.mask_idx, noise, mask_ids,
                   constants.lo, constants.hi, constants.alpha)
    out.append(Candidate("eager_reference", lambda: reference.fade_step_(*flat_args), {}))
    out.append(Candidate("eager_stored_noise", lambda: stored_noise_step(*stored_args), {}))
    if compile_baselines:
        compiled_stored = torch.compile(stored_noise_step, dynamic=False)
        compiled_reference = torch.compile(reference.fade_step_, dynamic=False)
        out.append(Candidate("compiled_stored_noise", lambda: compiled_stored(*stored_args), {}))
        out.append(Candidate("compiled_reference", lambda: compiled_reference(*flat_args), {}))
    copy_src = torch.randn(int(2.5 * xp.numel()), device=device)
    copy_dst = torch.empty_like(copy_src)
    out.append(Candidate("copy", lambda: copy_dst.copy_(copy_src), {}))
    return out


def bench_batch(device, batch: int, shape, flag_mix: str, args) -> list[dict]:
    """Times every candidate on one batch with each RNG contract's keys. Every rep goes round all (contract,
    candidate) pairs in turn, so load from other processes falls on all of them alike, and a ratio is taken per
    rep between samples of the same round. Long-format rows per candidate: time, bandwidth, fraction of the
    copy's bandwidth and the speedup over each baseline."""
    chosen = [(contract, candidate) for contract in args.contracts
              for candidate in candidates(device, batch, shape, batch, flag_mix, not args.no_compile, contract)
              if not args.only or candidate.name in args.only or candidate.name == "copy"]
    samples: dict[tuple[int, str], list[float]] = {(contract, c.name): [] for contract, c in chosen}
    for rep in range(args.warmup + args.reps):
        for contract, candidate in chosen:
            key = (contract, candidate.name)
            if key not in samples:
                continue  # failed earlier
            try:
                with environment(candidate.env):
                    ms = timer(device, candidate.step, 0, 1)
            except Exception as error:  # a baseline that fails to compile is reported, not fatal
                print(f"B={batch} {candidate.name}: failed ({type(error).__name__}: {error})", file=sys.stderr)
                del samples[key]
                continue
            if rep >= args.warmup:
                samples[key].append(ms)
    bytes_per_element = {(contract, c.name): c.bytes_per_element for contract, c in chosen}
    elements = batch * shape[0] * shape[1] * shape[2]
    size = "x".join(map(str, shape))
    rows = []
    for contract in args.contracts:
        config = {"flags": flag_mix, "shape": size, "rng_contract": contract, "warmup": args.warmup}

        def row(provider: str, metric: str, unit: str, values: list[float]) -> dict:
            return measurement("ops", f"{flag_mix} {size}", provider, metric, unit, values, device=device,
                               x_name="batch", x_value=batch, config=config)

        timings = {name: times for (k, name), times in samples.items() if k == contract}
        gbps = {name: [bytes_per_element[contract, name] * elements / (ms * 1e-3) / 1e9 for ms in times]
                for name, times in timings.items()}
        for name, times in timings.items():
            time, bandwidth, fraction = (row(name, "time", "ms", times), row(name, "bandwidth", "GB/s", gbps[name]),
                                         row(name, "frac_of_copy", "fraction",
                                             [g / c for g, c in zip(gbps[name], gbps["copy"])]))
            rows += [time, bandwidth, fraction]
            if name != "copy" and not name.endswith("_noise"):  # a fade_step_ implementation
                rows += [row(name, f"speedup_vs_{baseline}", "x", [b / t for b, t in zip(timings[baseline], times)])
                         for baseline in BASELINES if baseline in timings and baseline != name]
            print(f"v{contract} {flag_mix:6s} B={batch:4d} {name:24s} {time['value']:10.4f} ms "
                  f"{bandwidth['value']:9.1f} GB/s {fraction['value']:7.1%} of copy", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256, 512])
    parser.add_argument("--shape", type=int, nargs=3, default=[3, 256, 128], metavar=("C", "H", "W"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--flags", nargs="+", choices=FLAG_MIXES, default=["co_pro"],
                        help="which images do CO / PRO (see above); one set of rows per choice")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baselines")
    parser.add_argument("--contracts", type=int, nargs="+", choices=(1, 2), default=[2],
                        help="RNG contracts of the keys; one set of rows per contract (timed interleaved)")
    parser.add_argument("--only", nargs="+", metavar="IMPL", help="time only these implementations (and the copy)")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: print only)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    shape = tuple(args.shape)
    rows = []
    for flag_mix in args.flags:
        for batch in args.batches:
            rows += bench_batch(device, batch, shape, flag_mix, args)
            if args.out:  # after every batch, so a run cut short keeps what it measured
                write_measurements(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
