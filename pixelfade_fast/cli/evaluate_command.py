"""``pixelfade evaluate``: privacy and utility of PixelFade and the baselines on a dataset."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch

from ..errors import UserError
from .options import HelpFormatter, add_device_argument, add_model_arguments, load_model_from_args, resolve_device

REID_METHODS = "pixelfade,pixelfade_released,mosaic,blur,avih"
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


def suite_settings(args: argparse.Namespace, methods: tuple[str, ...]):
    """The suite's settings from the evaluate options: the attack preset with the size options overriding it."""
    from ..evaluation.attack_settings import attack_preset
    from ..evaluation.suite import SuiteSettings

    overrides = {name: value for name, value in (("epochs", args.attack_epochs), ("width", args.attack_width),
                                                 ("max_pairs", args.max_attack_train)) if value is not None}
    try:
        attack = attack_preset(args.attack_preset, **overrides)
    except ValueError as error:
        raise UserError(str(error)) from None
    return SuiteSettings(methods=methods, attack=attack, seed=args.seed, known_noise=not args.no_known_noise)


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.task != "reid":
        from ..evaluation.scenario_command import evaluate_scenario

        return evaluate_scenario(args)
    from .. import data
    from ..config import FadeConfig
    from ..evaluation.report import headline_table, write_report
    from ..evaluation.suite import METHODS, run_suite

    methods = tuple(m.strip() for m in (args.methods or REID_METHODS).split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown methods {unknown}; choose from {', '.join(sorted(METHODS))}")
    device = resolve_device(args.device)
    try:
        split = getattr(data, READERS[args.data])(args.root)
    except FileNotFoundError as error:
        raise UserError(str(error)) from None
    split = limit_test_ids(split, args.max_test_ids, args.seed)
    model = load_model_from_args(args, device)
    settings = suite_settings(args, methods)
    result = run_suite(model, split, settings, dataset=args.name or args.data, config=FadeConfig())
    report = write_report(result, Path(args.out), shlex.join(["pixelfade", *args.argv]),
                          show_originals=not args.hide_originals)
    print(headline_table(result))
    print(f"report: {report}")
    return 0


def add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser("evaluate", formatter_class=HelpFormatter,
                                   help="privacy and utility of PixelFade and the baselines on a dataset")
    evaluate.add_argument("--task", choices=("reid", "t2i", "vi"), default="reid",
                          help="reid: image queries, query and gallery protected; t2i: caption queries against a "
                               "protected gallery, through a dual encoder's image branch (--weights: a dual-encoder "
                               "file, default the bundled one); vi: visible queries against the protected infrared "
                               "gallery and back, through a cross-modality model (default the bundled one). t2i and "
                               "vi need --data synthped generated with captions / infrared cameras")
    evaluate.add_argument("--data", required=True, choices=sorted(READERS), help="dataset layout")
    evaluate.add_argument("--root", required=True, help="dataset folder (for csv: the CSV file)")
    evaluate.add_argument("--name", help="dataset name for the report (default: --data)")
    add_model_arguments(evaluate)
    evaluate.add_argument("--methods", help=f"comma-separated (default: {REID_METHODS}; for t2i and vi: "
                          f"pixelfade,avih,mosaic,blur); also the ablations, e.g. noise_weight_0.4,objective_zeros")
    evaluate.add_argument("--attack-preset", default="strong",
                          help="size of the recovery attack: tiny, demo or strong "
                               "(pixelfade_fast/evaluation/attack_settings.py)")
    evaluate.add_argument("--attack-epochs", type=int, help="override the preset's epochs")
    evaluate.add_argument("--attack-width", type=int, help="override the preset's U-Net width")
    evaluate.add_argument("--max-attack-train", type=int,
                          help="override the preset's training pairs (default of strong: every training image)")
    evaluate.add_argument("--max-test-ids", type=int, help="evaluate on this many test identities (seeded)")
    evaluate.add_argument("--no-known-noise", action="store_true", help="skip the seed-leak attack")
    evaluate.add_argument("--hide-originals", action="store_true",
                          help="grid.png without originals: 3 columns, protected thumbnails only where far from the "
                               "original (datasets that must not be redistributed)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the identity choice, attack and protection")
    add_device_argument(evaluate)
    evaluate.add_argument("--out", required=True, help="report folder")
    evaluate.set_defaults(func=cmd_evaluate, argv=None)
