"""main_train: the command line of train_reid (wired as ``pixelfade train``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..data import generate_synthped, read_cuhk01, read_market1501
from ..data.records import DatasetNotFoundError, ReIDSplit
from ..models import MODEL_NAMES
from .demo import DEMO_SYNTHPED
from .trainer import TrainSettings, train_reid

DATASETS = ("market", "cuhk01", "synthped")


def _parser() -> argparse.ArgumentParser:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        prog="pixelfade train",
        description="Train a Re-ID model of the zoo (cross-entropy + triplet) and score it on the test split.")
    parser.add_argument("--data", choices=DATASETS, required=True,
                        help="dataset layout: Market-1501, CUHK01 (485/486 split) or SynthPed (Market layout; "
                             "generated into --root with the demo's generator arguments when --root holds none)")
    parser.add_argument("--root", required=True, help="dataset folder")
    parser.add_argument("--model", default="osnet_x0_25", choices=MODEL_NAMES, help="network (default: %(default)s)")
    parser.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"), default=list(defaults.input_size),
                        help="input height and width (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    parser.add_argument("--p", type=int, default=defaults.p, help="identities per batch (default: %(default)s)")
    parser.add_argument("--k", type=int, default=defaults.k, help="images per identity (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="default: %(default)s")
    parser.add_argument("--schedule", choices=("cosine", "step"), default=defaults.schedule,
                        help="decay after warm-up (default: %(default)s)")
    parser.add_argument("--milestones", nargs="*", type=int, default=[],
                        help="epochs where the step schedule multiplies the rate by 0.1")
    parser.add_argument("--init-weights", help="local checkpoint to start from (matching tensors only)")
    parser.add_argument("--out", required=True, help="where to write the trained weights (.safetensors)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, sampling, augmentation")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=0, help="image decoding threads (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return parser


def _read_split(data: str, root: Path) -> ReIDSplit:
    if data == "cuhk01":
        return read_cuhk01(root)
    if data == "synthped" and not (root / "bounding_box_train").is_dir():
        print(f"generating SynthPed {DEMO_SYNTHPED} into {root}", file=sys.stderr, flush=True)
        return generate_synthped(root, **DEMO_SYNTHPED)
    return read_market1501(root)


def main_train(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (sys.argv[1:] when None), train, print the test scores as JSON; exit status 0,
    or 2 with a message when the data or an argument is wrong."""
    args = _parser().parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        print(f"error: --out must name a .safetensors file, got {args.out!r}", file=sys.stderr)
        return 2
    try:
        split = _read_split(args.data, Path(args.root))
        _, metrics = train_reid(
            args.model, split, device=args.device, progress=not args.quiet, checkpoint=out,
            checkpoint_metadata={"train_data": f"{args.data}:{Path(args.root).resolve()}"},
            init_weights=args.init_weights, num_workers=args.workers, input_size=tuple(args.input_size),
            epochs=args.epochs, p=args.p, k=args.k, lr=args.lr, warmup_epochs=args.warmup_epochs,
            schedule=args.schedule, milestones=tuple(args.milestones), seed=args.seed)
    except (DatasetNotFoundError, ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
    return 0
