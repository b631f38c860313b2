"""``pixelfade synthped``, ``backends`` and ``models``."""
from __future__ import annotations

import argparse

from .options import HelpFormatter


def cmd_synthped(args: argparse.Namespace) -> int:
    from ..data import generate_synthped

    split = generate_synthped(args.output, num_ids_train=args.train_ids, num_ids_test=args.test_ids,
                              images_per_id_per_cam=args.images_per_cam, num_cams=args.cams,
                              size=tuple(args.size), seed=args.seed, infrared_cams=args.infrared_cams,
                              captions_per_image=args.captions)
    print(f"wrote {len(split.train)} train, {len(split.query)} query, {len(split.gallery)} gallery images "
          f"to {args.output}")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from .. import backends

    for name, status in backends().items():
        where = ", ".join(d for d, ok in (("cpu", status.cpu), ("cuda", status.cuda)) if ok) or "none"
        print(f"{name:10s} runs on: {where:10s} {status.reason}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..models.registry import MODEL_INFO
    from ..models.spec import MODEL_FORMATS

    print("--model NAME:CHECKPOINT loads a local checkpoint into one of these (NAME alone: bundled weights):")
    for name, info in MODEL_INFO.items():
        bundled = f"; bundled: {info.bundled_weights}" if info.bundled_weights else ""
        print(f"  {name:22s} {info.description} [{info.toolkit} checkpoints{bundled}]")
    print("--model takes these formats:")
    for model_format in MODEL_FORMATS.values():
        print(f"  {model_format.usage:22s} {model_format.description}")
    return 0


def add_tool_commands(commands) -> None:
    synth = commands.add_parser("synthped", formatter_class=HelpFormatter,
                                help="generate a SynthPed dataset in Market-1501 layout")
    synth.add_argument("output", help="folder to write")
    synth.add_argument("--train-ids", type=int, default=100, help="training identities")
    synth.add_argument("--test-ids", type=int, default=100, help="test identities")
    synth.add_argument("--images-per-cam", type=int, default=2, help="images per identity and camera")
    synth.add_argument("--cams", type=int, default=4, help="cameras")
    synth.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("H", "W"), help="image size")
    synth.add_argument("--seed", type=int, default=0, help="generator seed")
    synth.add_argument("--infrared-cams", type=int, default=0,
                       help="extra infrared-like cameras (colour lost, thermal-like intensity; for --task vi)")
    synth.add_argument("--captions", type=int, default=0,
                       help="natural-language captions per image, in captions.jsonl sidecars (for --task t2i)")
    synth.set_defaults(func=cmd_synthped)

    info = commands.add_parser("backends", help="list the fade-step backends and where they run")
    info.set_defaults(func=cmd_backends)

    models = commands.add_parser("models", help="list the model zoo names for --model")
    models.set_defaults(func=cmd_models)
