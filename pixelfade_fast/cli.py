"""Command line: ``pixelfade protect | merge | evaluate | synthped | train | backends`` (``pixelfade -h``)."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import torch

from .config import FadeConfig

BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "assets" / "osnet_x0_25_synthped.safetensors"
DEFAULT_INPUT_SIZE = (256, 128)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_model(name: str, weights: str | None, device: str, input_size: tuple[int, int] | None = None):
    """A ReIDModel from the zoo with local weights (the bundled demo model when none are given).

    input_size None: the size recorded in a .safetensors file, else 256x128.
    """
    from .models import build_model, saved_input_size

    path = Path(weights) if weights else (BUNDLED_WEIGHTS if name == "osnet_x0_25" else None)
    if path is None:
        raise SystemExit(f"error: --weights is required for --model {name} (only osnet_x0_25 has bundled weights)")
    if not path.exists():
        raise SystemExit(f"error: weights file {path} not found")
    size = tuple(input_size) if input_size else (saved_input_size(path) or DEFAULT_INPUT_SIZE)
    try:
        model = build_model(name, pretrained_path=path, input_size=size).to(device)
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    return model, f"{name}:{_file_digest(path)}"


def _read_seed(args) -> int | None:
    if args.seed_file:
        text = Path(args.seed_file).read_text().strip()
        return int(text, 0)
    return None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FadeConfig()
    group = parser.add_argument_group("PixelFade settings (defaults: the paper's)")
    group.add_argument("--steps", type=int, default=defaults.steps)
    group.add_argument("--init-steps", type=int, default=defaults.init_steps)
    group.add_argument("--final-steps", type=int, default=defaults.final_steps)
    group.add_argument("--finish-steps", type=int, default=defaults.finish_steps,
                       help="extra CO-only steps for images still above epsilon")
    group.add_argument("--num-masks", type=int, default=defaults.num_masks)
    group.add_argument("--epsilon", type=float, default=defaults.epsilon)
    group.add_argument("--alpha", type=float, default=defaults.alpha)
    group.add_argument("--beta", type=float, default=defaults.beta)
    group.add_argument("--schedule", choices=["paper", "released"], default=defaults.schedule)
    group.add_argument("--norm", choices=["l1mean", "l2sq"], default=defaults.norm)
    group.add_argument("--masks", choices=["element", "pixel"], default=defaults.masks)


def config_from_args(args, **overrides) -> FadeConfig:
    try:
        return FadeConfig(steps=args.steps, init_steps=args.init_steps, final_steps=args.final_steps,
                          finish_steps=args.finish_steps, num_masks=args.num_masks, epsilon=args.epsilon,
                          alpha=args.alpha, beta=args.beta, schedule=args.schedule, norm=args.norm, masks=args.masks,
                          **overrides)
    except ValueError as error:
        raise SystemExit(f"error: {error}")


def cmd_protect(args) -> int:
    from .gallery import Shard, protect_folder

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    shard = Shard.from_env()
    if device == "cuda" and shard.world_size > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    seed = _read_seed(args)
    if seed is None and shard.world_size > 1:
        raise SystemExit("error: under torchrun every rank needs the same secret: pass --seed-file")
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little")
    model, model_id = load_model(args.model, args.weights, device, args.input_size)
    config = config_from_args(args, quantize=True)
    try:
        report = protect_folder(model, Path(args.input), Path(args.output), config, seed=seed, model_id=model_id,
                                batch_size=args.batch_size, backend=args.backend, resume=args.resume, shard=shard,
                                progress=None if not args.no_progress else False)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        raise SystemExit(f"error: {error}")
    print(f"protected {report.protected} images ({report.met_epsilon} met epsilon), "
          f"{report.skipped_done} already done, {len(report.failed)} unreadable")
    for name, reason in report.failed:
        print(f"  unreadable: {name}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_merge(args) -> int:
    from .gallery import merge_manifests

    target = merge_manifests(Path(args.output))
    print(f"wrote {target}")
    return 0


READERS = {"market1501": "read_market1501", "synthped": "read_market1501", "cuhk01": "read_cuhk01",
           "cuhk03": "read_cuhk03", "msmt17": "read_msmt17", "csv": "read_csv_dataset"}


def limit_test_ids(split, max_ids: int | None, seed: int):
    """The split with its query/gallery reduced to ``max_ids`` test identities (seeded choice; distractors kept)."""
    if max_ids is None:
        return split
    pids = sorted(split.pids("query"))
    chosen = set(pids) if len(pids) <= max_ids else {
        pids[i] for i in torch.randperm(len(pids), generator=torch.Generator().manual_seed(seed))[:max_ids].tolist()}
    return type(split)(train=split.train, query=[r for r in split.query if r.pid in chosen],
                       gallery=[r for r in split.gallery if r.pid in chosen or r.pid <= 0])


def cmd_evaluate(args) -> int:
    from . import data
    from .evaluation.attack_settings import attack_preset
    from .evaluation.report import headline_table, write_report
    from .evaluation.suite import METHODS, SuiteSettings, run_suite

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"error: unknown methods {unknown}; choose from {', '.join(sorted(METHODS))}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        split = getattr(data, READERS[args.data])(args.root)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}")
    overrides = {name: value for name, value in (("epochs", args.attack_epochs), ("width", args.attack_width),
                                                 ("max_pairs", args.max_attack_train)) if value is not None}
    try:
        attack = attack_preset(args.attack_preset, **overrides)
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    split = limit_test_ids(split, args.max_test_ids, args.seed)
    model, _ = load_model(args.model, args.weights, device, args.input_size)
    settings = SuiteSettings(methods=methods, attack=attack, seed=args.seed, known_noise=not args.no_known_noise)
    result = run_suite(model, split, settings, dataset=args.name or args.data, config=FadeConfig())
    report = write_report(result, Path(args.out), "pixelfade " + " ".join(args.argv),
                          show_originals=not args.hide_originals)
    print(headline_table(result))
    print(f"report: {report}")
    return 0


def cmd_synthped(args) -> int:
    from .data import generate_synthped

    split = generate_synthped(args.output, num_ids_train=args.train_ids, num_ids_test=args.test_ids,
                              images_per_id_per_cam=args.images_per_cam, num_cams=args.cams,
                              size=tuple(args.size), seed=args.seed)
    print(f"wrote {len(split.train)} train, {len(split.query)} query, {len(split.gallery)} gallery images "
          f"to {args.output}")
    return 0


def cmd_backends(args) -> int:
    from . import backends

    for name, status in backends().items():
        where = ", ".join(d for d, ok in (("cpu", status.cpu), ("cuda", status.cuda)) if ok) or "none"
        print(f"{name:10s} runs on: {where:10s} {status.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelfade", description="PixelFade protection of pedestrian galleries")
    commands = parser.add_subparsers(dest="command", required=True)

    protect = commands.add_parser("protect", help="protect every image of a folder into OUT/<path>.png")
    protect.add_argument("input", help="folder of jpg/png/bmp images (searched recursively)")
    protect.add_argument("output", help="output folder: protected PNGs and manifest.jsonl")
    protect.add_argument("--model", default="osnet_x0_25", help="model zoo name (default: osnet_x0_25)")
    protect.add_argument("--weights", help="weights file (.safetensors/.pth); default: the bundled demo model")
    protect.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                         help="the model's input size; images are resized to it (default: the size recorded in a "
                              ".safetensors file, else 256 128)")
    protect.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    protect.add_argument("--backend", default="auto", choices=["auto", "reference", "triton", "cpp"])
    protect.add_argument("--batch-size", type=int, default=64)
    protect.add_argument("--seed-file", help="file holding the secret run seed (an integer); default: random")
    protect.add_argument("--resume", action="store_true", help="skip images already in the manifest")
    protect.add_argument("--no-progress", action="store_true")
    add_config_arguments(protect)
    protect.set_defaults(func=cmd_protect)

    merge = commands.add_parser("merge", help="join the per-rank manifests of a torchrun protection run")
    merge.add_argument("output")
    merge.set_defaults(func=cmd_merge)

    evaluate = commands.add_parser("evaluate", help="privacy and utility of PixelFade and the baselines on a dataset")
    evaluate.add_argument("--data", required=True, choices=sorted(READERS))
    evaluate.add_argument("--root", required=True, help="dataset folder (for csv: the CSV file)")
    evaluate.add_argument("--name", help="dataset name for the report")
    evaluate.add_argument("--model", default="osnet_x0_25")
    evaluate.add_argument("--weights", help="weights file; default: the bundled demo model")
    evaluate.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                          help="default: the size recorded in a .safetensors file, else 256 128")
    evaluate.add_argument("--methods", default="pixelfade,pixelfade_released,mosaic,blur,avih",
                          help="comma-separated; also the ablations, e.g. noise_weight_0.4,objective_zeros")
    evaluate.add_argument("--attack-preset", default="strong",
                          help="size of the recovery attack: tiny, demo or strong (evaluation/attack_settings.py)")
    evaluate.add_argument("--attack-epochs", type=int, help="override the preset's epochs")
    evaluate.add_argument("--attack-width", type=int, help="override the preset's U-Net width")
    evaluate.add_argument("--max-attack-train", type=int, help="override the preset's training pairs (default of "
                                                                  "strong: every training image)")
    evaluate.add_argument("--max-test-ids", type=int, help="evaluate on this many test identities (seeded)")
    evaluate.add_argument("--no-known-noise", action="store_true", help="skip the seed-leak attack")
    evaluate.add_argument("--hide-originals", action="store_true",
                          help="grid.png without originals: 3 columns, protected thumbnails only where far from the "
                               "original (datasets that must not be redistributed)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device")
    evaluate.add_argument("--out", required=True, help="report folder")
    evaluate.set_defaults(func=cmd_evaluate, argv=None)

    synth = commands.add_parser("synthped", help="generate a SynthPed dataset in Market-1501 layout")
    synth.add_argument("output")
    synth.add_argument("--train-ids", type=int, default=100)
    synth.add_argument("--test-ids", type=int, default=100)
    synth.add_argument("--images-per-cam", type=int, default=2)
    synth.add_argument("--cams", type=int, default=4)
    synth.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("H", "W"))
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synthped)

    commands.add_parser("train", add_help=False, help="train a Re-ID model of the zoo (pixelfade train -h)")

    info = commands.add_parser("backends", help="list the fade-step backends and where they run")
    info.set_defaults(func=cmd_backends)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the trainer parses its own options (and its own -h)
        from .training.command import main_train

        return main_train(argv[1:])
    args = build_parser().parse_args(argv)
    if hasattr(args, "argv"):
        args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
