"""``pixelfade evaluate --task t2i | vi``: the text-to-image and visible-infrared evaluations on a SynthPed root."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..data.captions import read_captions
from ..data.records import DatasetNotFoundError, ReIDSplit
from ..data.synthped import read_modalities
from ..errors import UserError
from ..evaluation.scenario_report import summary_table, write_scenario_report
from .evaluate_command import SCENARIO_METHODS, parse_methods, read_split, suite_settings
from .options import config_from_args, resolve_device

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_DUAL_ENCODER = ASSETS / "dual_encoder_synthped.safetensors"
BUNDLED_CROSS_MODALITY = ASSETS / "osnet_x0_25_synthped_vi.safetensors"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _only(records, camids):
    return [r for r in records if r.camid in camids]


def evaluate_scenario(args) -> int:
    """Run the task of ``args`` (the parsed ``pixelfade evaluate`` options) and write its report."""
    methods = parse_methods(args.methods, SCENARIO_METHODS)
    config = config_from_args(args)
    if args.data != "synthped":
        raise UserError(f"--task {args.task} needs --data synthped (a SynthPed root generated with captions "
                         f"and infrared cameras, e.g. by scripts/scenario_reports.py), got --data {args.data}")
    device = resolve_device(args.device)
    root = Path(args.root)
    split = read_split(args)
    try:
        infrared = read_modalities(root)[1] if args.task == "vi" or (root / "modalities.json").is_file() else set()
        captions = {} if args.task == "vi" else {
            k: v for folder in ("query", "bounding_box_test") for k, v in read_captions(root / folder).items()}
    except (DatasetNotFoundError, ValueError) as error:
        raise UserError(f"{error}")
    settings = suite_settings(args, methods)
    name = args.name or f"SynthPed {root.name}"
    try:
        if args.task == "t2i":
            result = _text_to_image(args, split, infrared, captions, settings, config, name, device)
        else:
            result = _visible_infrared(args, split, infrared, settings, config, name, device)
    except ValueError as error:
        raise UserError(f"{error}")
    report = write_scenario_report(result, Path(args.out), shlex.join(["pixelfade", *(args.argv or [])]))
    print(summary_table(result))
    print(f"report: {report}")
    return 0


def _text_to_image(args, split, infrared, captions, settings, config, name, device):
    from ..models.dual_encoder import load_dual_encoder
    from ..evaluation.text_to_image import run_text_to_image

    weights = Path(args.weights) if args.weights else BUNDLED_DUAL_ENCODER
    try:
        model = load_dual_encoder(weights).to(device)
    except FileNotFoundError as error:
        raise UserError(f"{error}")
    visible = {r.camid for r in split.gallery} - infrared
    split = ReIDSplit(train=_only(split.train, visible), query=_only(split.query, visible),
                      gallery=_only(split.gallery, visible))
    return run_text_to_image(model, split, captions, settings, dataset=name, config=config, log=_log)


def _visible_infrared(args, split, infrared, settings, config, name, device):
    from ..models.spec import load_model_spec
    from ..evaluation.visible_infrared import run_visible_infrared

    spec, weights = args.model, args.weights
    if spec == "osnet_x0_25" and weights is None:  # the bundled cross-modality model, not the RGB demo model
        weights = str(BUNDLED_CROSS_MODALITY)
    model = load_model_spec(spec, weights=weights, input_size=args.input_size, mean=args.mean, std=args.std,
                            allow_pickle=args.allow_pickle).to(device)
    return run_visible_infrared(model, split, infrared, settings, dataset=name, config=config, log=_log)
