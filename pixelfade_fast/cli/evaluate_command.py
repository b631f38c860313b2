"""``pixelfade evaluate``: privacy and utility of PixelFade and the baselines on a dataset."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import UserError
from .options import (HelpFormatter, add_config_arguments, add_device_argument, add_model_arguments,
                      add_storage_arguments, config_from_args, load_model_from_args, resolve_device,
                      storage_from_args)

SCENARIO_METHODS = "pixelfade,avih,mosaic,blur"  # --task t2i and vi: PixelFade and the baselines without a model
DESCRIPTION = """Privacy and utility of PixelFade and the baselines on a dataset with Re-ID labels.

The query and gallery are protected with every method (--methods), the model's Re-ID accuracy is measured in the
four query/gallery settings, and a recovery attack is trained on the training split's protected images to score
what each method leaks (against an information-free floor). The PixelFade methods use the PixelFade settings
below. The report (report.json, report.md, grid.png) goes to --out."""


def _methods_help() -> str:
    from ..evaluation.methods import METHODS, default_methods

    others = [name for name in METHODS if name not in default_methods()]
    return (f"comma-separated protection methods (default: {','.join(default_methods())}; for t2i and vi: "
            f"{SCENARIO_METHODS}); also the paper's ablations: {', '.join(others)}")


def _attackers_help() -> str:
    from ..evaluation.attackers import ATTACKERS, default_attackers, optional_attackers

    return (f"comma-separated attackers added to every method's best-of (always run: {', '.join(default_attackers())}"
            f"), or 'all': " + "; ".join(f"{name}: {ATTACKERS[name].description}" for name in optional_attackers()))


def parse_attackers(text: str | None) -> tuple[str, ...]:
    """The --attackers list ('all': every optional attacker), every name registered (UserError otherwise)."""
    from ..evaluation.attackers import check_attackers, optional_attackers

    names = [a.strip() for a in (text or "").split(",") if a.strip()]
    try:
        return optional_attackers() if names == ["all"] else check_attackers(names)
    except ValueError as error:
        raise UserError(str(error)) from None


def parse_methods(text: str | None, default: str) -> tuple[str, ...]:
    """The --methods list, every name registered (UserError naming the unknown ones)."""
    from ..evaluation.methods import check_methods

    try:
        return check_methods(m.strip() for m in (text or default).split(",") if m.strip())
    except ValueError as error:
        raise UserError(str(error)) from None


def read_split(args: argparse.Namespace):
    """The --data split at --root, limited to --max-test-ids, every listed image checked to exist."""
    from ..data.datasets import DATASETS, limit_test_ids, read_dataset

    try:
        split = read_dataset(args.data, args.root, image_root=args.image_root)
    except FileNotFoundError as error:
        hint = (" (relative paths are read from --image-root, default the CSV file's folder)"
                if DATASETS[args.data].takes_image_root else "")
        raise UserError(f"{error}{hint}") from None
    except ValueError as error:
        raise UserError(str(error)) from None
    return limit_test_ids(split, args.max_test_ids, args.seed)


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
    return SuiteSettings(methods=methods, attack=attack, seed=args.seed, known_noise=not args.no_known_noise,
                         attackers=parse_attackers(args.attackers), attacker_size=args.attacker_size,
                         storage=storage_from_args(args))


def check_attacker_model(args: argparse.Namespace, attackers: tuple[str, ...]) -> None:
    """UserError when an attacker that holds another model was chosen without --attacker-model, or
    --attacker-model was given to no attacker that uses it."""
    from ..evaluation.attackers import ATTACKERS

    needing = [name for name in attackers if ATTACKERS[name].needs_model == "other"]
    if args.attacker_model is None and needing:
        raise UserError(f"the attackers {', '.join(needing)} need --attacker-model SPEC (a Re-ID model other than "
                        f"the authorised one)")
    if args.attacker_model is not None and not needing:
        raise UserError("--attacker-model is used only by the attackers that hold another model "
                        "(--attackers adversarial_other,feature_decoder_other)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.task != "reid":
        from .scenario_command import evaluate_scenario

        return evaluate_scenario(args)
    from ..evaluation.methods import default_methods
    from ..evaluation.report import headline_table, write_report
    from ..evaluation.suite import run_suite

    methods = parse_methods(args.methods, ",".join(default_methods()))
    config = config_from_args(args)
    device = resolve_device(args.device)
    settings = suite_settings(args, methods)
    check_attacker_model(args, settings.attackers)
    split = read_split(args)
    model = load_model_from_args(args, device)
    other_model = None
    if args.attacker_model is not None:
        from ..models.spec import load_model_spec

        other_model = load_model_spec(args.attacker_model, input_size=tuple(model.input_size)).to(device)
    result = run_suite(model, split, settings, dataset=args.name or args.data, config=config,
                       other_model=other_model)
    report = write_report(result, Path(args.out), shlex.join(["pixelfade", *args.argv]),
                          show_originals=not args.hide_originals)
    print(headline_table(result))
    print(f"report: {report}")
    return 0


def add_evaluate_command(commands) -> None:
    from ..data.datasets import DATASETS
    from ..evaluation.attacker_sizes import ATTACKER_SIZES

    evaluate = commands.add_parser("evaluate", formatter_class=HelpFormatter,
                                   help="privacy and utility of PixelFade and the baselines on a dataset",
                                   description=DESCRIPTION)
    evaluate.add_argument("--task", choices=("reid", "t2i", "vi"), default="reid",
                          help="reid: image queries, query and gallery protected; t2i: caption queries against a "
                               "protected gallery, through a dual encoder's image branch (--weights: a dual-encoder "
                               "file, default the bundled one); vi: visible queries against the protected infrared "
                               "gallery and back, through a cross-modality model (default the bundled one). t2i and "
                               "vi need --data synthped generated with captions / infrared cameras")
    evaluate.add_argument("--data", required=True, choices=list(DATASETS),
                          help="dataset layout: " + "; ".join(f"{name}: {d.description}"
                                                              for name, d in DATASETS.items()))
    evaluate.add_argument("--root", required=True, help="dataset folder (for csv: the CSV file)")
    evaluate.add_argument("--image-root", metavar="FOLDER",
                          help="folder the CSV's relative image paths are read from (--data csv; default: the CSV "
                               "file's folder)")
    evaluate.add_argument("--name", help="dataset name for the report (default: --data)")
    add_model_arguments(evaluate)
    evaluate.add_argument("--methods", help=_methods_help())
    evaluate.add_argument("--attack-preset", default="strong",
                          help="size of the recovery attack: tiny, demo or strong "
                               "(pixelfade_fast/evaluation/attack_settings.py)")
    evaluate.add_argument("--attack-epochs", type=int, help="override the preset's epochs")
    evaluate.add_argument("--attack-width", type=int, help="override the preset's U-Net width")
    evaluate.add_argument("--max-attack-train", type=int,
                          help="override the preset's training pairs (default of strong: every training image)")
    evaluate.add_argument("--attackers", help=_attackers_help())
    evaluate.add_argument("--attacker-size", choices=ATTACKER_SIZES, default="cpu",
                          help="size of the attackers added by --attackers: tiny (tests), cpu (sized for a 2-core "
                               "CPU) or full (the published sizes, for a GPU)")
    evaluate.add_argument("--attacker-model", metavar="SPEC",
                          help="a Re-ID model the attackers hold besides the authorised one (same formats as "
                               "--model), for the attackers that use another model")
    evaluate.add_argument("--max-test-ids", type=int,
                          help="evaluate on this many test identities, a choice seeded by --seed (default: all)")
    evaluate.add_argument("--no-known-noise", action="store_true", help="skip the seed-leak attack")
    evaluate.add_argument("--hide-originals", action="store_true",
                          help="grid.png without originals: 3 columns, protected thumbnails only where far from the "
                               "original (datasets that must not be redistributed)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the identity choice, attack and protection")
    add_storage_arguments(evaluate, "every method's protected images", default=None,
                          unset="the protected pixels themselves, as floats, no file")
    add_device_argument(evaluate)
    add_config_arguments(evaluate, exclude=("schedule",))
    evaluate.add_argument("--out", required=True, help="report folder")
    evaluate.set_defaults(func=cmd_evaluate, argv=None)
