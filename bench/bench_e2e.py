"""End-to-end PixelFade speed on the models users run: the official-style loop, the floor, `protect` with its
defaults and with the speed choice the tuner makes on this machine, and the `pixelfade protect` command on a
folder against `protect()` on preloaded tensors. See docs/performance.md.

Cases (--cases): a zoo name (random weights at --input-size); ``bundled`` (the bundled SynthPed OSNet-x0.25 at its
own 128x64); ``onnx`` (the bundled weights exported to ONNX at --input-size and loaded back through our importer,
as `--model FILE.onnx` loads it); ``cuhk01`` (OSNet-x0.25 trained on CUHK01 with our trainer: --cuhk01-weights, a
file of scripts/train_cuhk01_models.py, or else trained here briefly on --cuhk01-root, 128 identities, 3 epochs at
128x64, then run at --input-size; left out, with the reason printed, when neither is given).

Per case the variants are tried in turn, --rounds times after a warm-up round (A, B, C, A, B, C, ...), each try
--timed-steps steps; each row is the median over the rounds (20/80% quantiles beside it) of ms per image for
--steps steps (set-up + steps x per-step cost), and of the ratio to the official-style loop of the same round:
- official_loop: the released loop's shape (bench/e2e_loops.py says what it does), batch 20;
- floor_nchw / floor_nhwc: forward + input-gradient backward, eager, nothing else, at protect's default batch;
- protect_default: protect()'s engine with its defaults (batch 16 on the CPU, BatchNorm folded, NCHW on the CPU);
- protect_tuned: the choice of engine/tuning.py, measured here first for a 1,000-image run (a fresh cache in a
  temporary file); the tuner's cost is a row of its own (seconds, and % of that run's estimated time);
- protect_<backend>_<options> at each --batches (optional): our loop with one fixed set of options (the GPU rows).
The command case (--gallery-images > 0): `pixelfade protect` (in this process: argument parsing, model loading,
decoding, PNG writing, manifest) on a folder against protect() on the same images preloaded, same model (the
bundled one), settings and threads, tried in turn --gallery-rounds times (A B, B A, ...); images/s and their ratio
(the preloaded images' decoding is not timed: protect() starts from tensors).

    nice -n 19 python bench/bench_e2e.py --device cpu --cuhk01-root ../shared/data/cuhk01 \
        --out bench/results/e2e_cpu.csv --plot docs/figures/e2e_cpu.png
    python bench/bench_e2e.py --device cuda --cases agw_r50_nl osnet_x0_25 --batches 16 64 256 --out $OUT/e2e.csv
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import pixelfade_fast as pf
from pixelfade_fast import _backend
from pixelfade_fast.engine import DEFAULT_BATCH, Acceleration, tuning
from pixelfade_fast.models import build_model
from pixelfade_fast.models.spec import load_model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measurement, write_measurements  # noqa: E402
from e2e_loops import OFFICIAL_BATCH, FloorRunner, OfficialRunner, OursRunner  # noqa: E402

BENCH = "e2e"
TUNED_RUN_IMAGES = 1000  # the run size the tuner's cost cap is taken for


def variants(device: torch.device) -> dict[str, tuple[str, Acceleration]]:
    """Our loop with fixed options, for the rows at --batches: name -> (backend, options)."""
    cuda = device.type == "cuda"
    fast = "cpp" if pf.backends()["cpp"].cuda or not cuda else "triton"
    rows = {
        f"protect_{fast}_eager": (fast, Acceleration(fold_batchnorm=False, channels_last=cuda, cuda_graph=False)),
        f"protect_{fast}_fold": (fast, Acceleration(fold_batchnorm=True, channels_last=cuda, cuda_graph=False)),
        f"protect_{fast}_fold_nhwc": (fast, Acceleration(fold_batchnorm=True, channels_last=True, cuda_graph=False)),
    }
    if cuda:
        rows.update({
            f"protect_{fast}_fold_graph": (fast, Acceleration(fold_batchnorm=True, cuda_graph=True)),
            f"protect_{fast}_fold_graph_bf16": (fast, Acceleration(fold_batchnorm=True, amp=True, cuda_graph=True)),
        })
    return rows


def smooth_pixels(count: int, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, size[0] // 16, size[1] // 16, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return (images + 0.1 * torch.rand(count, 3, *size, generator=generator)).clamp(0, 1).to(device)


def load_case(name: str, args, scratch: Path) -> tuple[str, torch.nn.Module] | str:
    """(label, model) of a case, or why it is left out."""
    size = tuple(args.input_size)
    if name == "bundled":
        return "bundled OSNet-x0.25 (SynthPed)", load_model_spec("osnet_x0_25")
    if name == "onnx":
        from pixelfade_fast.models.onnx.export import export_onnx

        path = scratch / "osnet_x0_25_synthped.onnx"
        try:
            export_onnx(load_model_spec("osnet_x0_25"), path, input_size=size)
        except ImportError as error:
            return f"no ONNX export: {error}"
        return "OSNet-x0.25 ONNX export (bundled weights) through our importer", load_model_spec(str(path))
    if name == "cuhk01":
        weights = args.cuhk01_weights
        if weights is None:
            if args.cuhk01_root is None:
                return "no --cuhk01-weights and no --cuhk01-root: no CUHK01-trained model"
            weights = train_cuhk01(Path(args.cuhk01_root), scratch)
            label = "OSNet-x0.25 trained here on CUHK01 (128 ids, 3 epochs at 128x64)"
        else:
            label = f"OSNet-x0.25 trained on CUHK01 ({Path(weights).name})"
        return label, load_model_spec(f"osnet_x0_25:{weights}", input_size=size)
    return f"{name}, random weights", build_model(name, seed=0, input_size=size)


def train_cuhk01(root: Path, scratch: Path) -> Path:
    """A CUHK01-trained OSNet-x0.25 in seconds: speed rows need trained weights, not a good model."""
    from pixelfade_fast.data import read_cuhk01
    from pixelfade_fast.training import train_reid

    path = scratch / "osnet_x0_25_cuhk01_brief.safetensors"
    begin = time.perf_counter()
    train_reid("osnet_x0_25", read_cuhk01(root, num_train_ids=128), checkpoint=path, evaluate=False, progress=False,
               input_size=(128, 64), epochs=3, warmup_epochs=1, lr=3e-3, seed=0)
    print(f"trained the CUHK01 model in {time.perf_counter() - begin:.0f} s", flush=True)
    return path


def tune(model, size, backend: str, device: torch.device) -> tuning.SpeedSettings:
    """The tuner's choice for a 1,000-image run of this model, measured now (a fresh cache)."""
    with tempfile.TemporaryDirectory() as folder:
        before = os.environ.get(tuning.CACHE_ENV)
        os.environ[tuning.CACHE_ENV] = str(Path(folder) / "tuning.json")
        try:
            return tuning.choose_speed(model, (3, *size), pf.FadeConfig(), images=TUNED_RUN_IMAGES, backend=backend,
                                       acceleration=None, batch_size=None,
                                       default_batch=DEFAULT_BATCH[device.type], tune=True)
        finally:
            if before is None:
                os.environ.pop(tuning.CACHE_ENV)
            else:
                os.environ[tuning.CACHE_ENV] = before


def bench_case(name: str, label: str, model, args, device: torch.device, rows: list[dict]) -> None:
    model = model.to(device)
    size = tuple(model.input_size)
    case = f"{name} {size[0]}x{size[1]}"
    backend = _backend.resolve("auto", device)
    base = {"label": label, "steps": args.steps, "timed_steps": args.timed_steps, "rounds": args.rounds}
    speed = tune(model, size, backend, device)
    choice = speed.tuning
    fraction = 100 * choice.cost_s / (choice.ms_per_image_step / 1000 * TUNED_RUN_IMAGES * pf.FadeConfig().total_steps)
    tuned = {"choice": choice.choice.label, "measured": choice.measured}
    for metric, unit, value in (("tuning_cost", "s", choice.cost_s),
                                ("tuning_cost_of_1000_image_run", "%", fraction)):
        rows.append(measurement(BENCH, case, "tuner", metric, unit, value, device=device, config=base | tuned))
    print(f"{case}: {speed.note}; {fraction:.1f}% of a {TUNED_RUN_IMAGES}-image run", flush=True)
    runners = {}
    mean, std = model.mean.to(device), model.std.to(device)
    official = smooth_pixels(OFFICIAL_BATCH, size, device)
    default_batch = DEFAULT_BATCH[device.type]
    pixels = smooth_pixels(max(default_batch, speed.batch_size, *args.batches), size, device)
    x = (pixels[:default_batch] - mean) / std
    runners["official_loop"] = OfficialRunner(model, (official - mean) / std)
    runners["floor_nchw"] = FloorRunner(model, x, channels_last=False)
    runners["floor_nhwc"] = FloorRunner(model, x, channels_last=True)
    runners["protect_default"] = OursRunner(model, pixels[:default_batch], backend, Acceleration(), args.timed_steps)
    runners["protect_tuned"] = OursRunner(model, pixels[:speed.batch_size], backend, speed.acceleration,
                                          args.timed_steps)
    for batch in args.batches:
        for variant, (variant_backend, options) in variants(device).items():
            runners[f"{variant} b{batch}"] = OursRunner(model, pixels[:batch], variant_backend, options,
                                                        args.timed_steps)
    per_image: dict[str, list[float]] = {key: [] for key in runners}
    ratios: dict[str, list[float]] = {key: [] for key in runners}
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms up (first use of the kernels, folding)
            times = {key: runner.run(args.timed_steps).per_image_ms(args.steps) for key, runner in runners.items()}
            if round_ == 0:
                continue
            for key, ms in times.items():
                per_image[key].append(ms)
                ratios[key].append(times["official_loop"] / ms)
    finally:
        for runner in runners.values():
            runner.close()
    for key, runner in runners.items():
        provider, _, batch_label = key.partition(" ")
        config = base | ({"tuned": tuned["choice"]} if key == "protect_tuned" else {})
        rows.append(measurement(BENCH, case, provider, "time_per_image", "ms", per_image[key], device=device,
                                x_name="batch", x_value=runner.batch, config=config))
        if key != "official_loop":
            rows.append(measurement(BENCH, case, provider, "speedup_vs_official_loop", "x", ratios[key],
                                    device=device, x_name="batch", x_value=runner.batch, config=config))
        print(f"{case:24s} {key:28s} batch {runner.batch:3d}: {statistics.median(per_image[key]):9.1f} ms/img "
              f"({args.steps} steps), {statistics.median(ratios[key]):5.2f}x official", flush=True)


def bench_command(args, device: torch.device, scratch: Path, rows: list[dict]) -> None:
    """`pixelfade protect` on a folder against protect() on the same images preloaded, tried in turn."""
    from pixelfade_fast import cli
    from pixelfade_fast.data import generate_synthped, load_images
    from pixelfade_fast.gallery import create_seed_file, find_inputs, image_uid

    folder = scratch / "gallery_in"
    folder.mkdir()
    if args.cuhk01_root is not None:
        source = Path(args.cuhk01_root) / "campus"
    else:
        generate_synthped(scratch / "synthped", num_ids_train=1, num_ids_test=max(2, args.gallery_images // 4),
                          images_per_id_per_cam=2, num_cams=2, size=(128, 64), seed=0)
        source = scratch / "synthped" / "bounding_box_test"
    names = find_inputs(source).images[:args.gallery_images]
    for name in names:  # copies in a temporary folder: the gallery reads no symlink leaving its input folder
        shutil.copyfile(source / name, folder / Path(name).name)
    names = find_inputs(folder).images
    model = load_model_spec("osnet_x0_25").to(device)
    edge = min(5, args.gallery_steps // 2)
    config = pf.FadeConfig(steps=args.gallery_steps, init_steps=edge, final_steps=edge, finish_steps=10, quantize=True)
    seed_file = create_seed_file(scratch / "secret")
    threads = torch.get_num_threads()
    batch = DEFAULT_BATCH[device.type]
    options = Acceleration(fold_batchnorm=True, channels_last=False)  # both fixed: no tuning in either
    command = ["protect", str(folder), "OUT", "--model", "osnet_x0_25", "--seed-file", str(seed_file.path),
               "--device", device.type, "--batch-size", str(batch), "--fold-batchnorm", "--no-channels-last",
               "--no-tune", "--threads", str(threads), "--no-progress", "--steps", str(config.steps),
               "--init-steps", str(edge), "--final-steps", str(edge), "--finish-steps", str(config.finish_steps)]
    rates: dict[str, list[float]] = {"protect_tensors": [], "pixelfade_protect_command": []}
    preloaded = load_images([folder / n for n in names], tuple(model.input_size)).to(device)

    def tensors() -> None:
        pf.protect(model, preloaded, config, uids=[image_uid(n) for n in names], seed=seed_file.seed,
                   batch_size=batch, acceleration=options, progress=False)

    def folder_command() -> None:
        out = scratch / "gallery_out"
        with contextlib.redirect_stdout(None):
            status = cli.main([str(out) if part == "OUT" else part for part in command])
        if status != 0:
            raise SystemExit(f"pixelfade protect exited {status}")
        shutil.rmtree(out)

    for round_ in range(args.gallery_rounds):  # A B, B A, A B, ...: neither always runs first
        order = [("protect_tensors", tensors), ("pixelfade_protect_command", folder_command)]
        for provider, run in order[::-1] if round_ % 2 else order:
            begin = time.perf_counter()
            run()
            rates[provider].append(len(names) / (time.perf_counter() - begin))
        print(f"command round {round_}: protect() {rates['protect_tensors'][-1]:.2f} img/s, command "
              f"{rates['pixelfade_protect_command'][-1]:.2f} img/s", flush=True)
    case = f"command {len(names)} images {'x'.join(map(str, model.input_size))}"
    base = {"model": "bundled osnet_x0_25", "images": len(names), "steps": config.total_steps,
            "images_from": "cuhk01" if args.cuhk01_root else "synthped", "batch": batch}
    for provider, values in rates.items():
        rows.append(measurement(BENCH, case, provider, "images_per_s", "img/s", values, device=device, config=base))
    ratio = [c / p for c, p in zip(rates["pixelfade_protect_command"], rates["protect_tensors"])]
    rows.append(measurement(BENCH, case, "pixelfade_protect_command", "ratio_to_protect_tensors", "x", ratio,
                            device=device, config=base))
    print(f"{case}: command / protect() = {statistics.median(ratio):.3f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", nargs="*", default=["osnet_x0_25", "bundled", "onnx", "cuhk01"])
    parser.add_argument("--input-size", nargs=2, type=int, default=[256, 128], help="of every case but bundled")
    parser.add_argument("--cuhk01-root", help="the CUHK01 folder (campus/ inside): read in place, never copied")
    parser.add_argument("--cuhk01-weights", help="a CUHK01-trained osnet_x0_25 checkpoint")
    parser.add_argument("--batches", nargs="*", type=int, default=[], help="batches of the fixed-option rows")
    parser.add_argument("--steps", type=int, default=100, help="T the rows stand for")
    parser.add_argument("--timed-steps", type=int, default=3, help="steps per try")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--gallery-images", type=int, default=48, help="images of the command case (0: none)")
    parser.add_argument("--gallery-steps", type=int, default=30, help="T of the command case (+10 finish steps)")
    parser.add_argument("--gallery-rounds", type=int, default=4)
    parser.add_argument("--budget", type=float, default=float("inf"), help="start no case after this many s")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name in args.cases:
            if time.perf_counter() - started > args.budget:
                print(f"budget spent: {name} and later cases not run", flush=True)
                break
            loaded = load_case(name, args, scratch)
            if isinstance(loaded, str):
                print(f"{name}: left out ({loaded})", flush=True)
                continue
            bench_case(name, *loaded, args, device, rows)
            if args.out:
                write_measurements(args.out, rows)
        if args.gallery_images and time.perf_counter() - started <= args.budget:
            bench_command(args, device, scratch, rows)
    print(f"bench_e2e: {time.perf_counter() - started:.0f} s", flush=True)
    if args.out:
        write_measurements(args.out, rows)
    if args.plot:
        from plot_e2e import plot_e2e

        plot_e2e(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
