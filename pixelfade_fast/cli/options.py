"""Options shared by the sub-commands: PixelFade settings generated from FadeConfig, the model, the device and
the engine's speed options. Generating the PixelFade options from FadeConfig's fields keeps the command line
from drifting from the config (same names, defaults, choices and help)."""
from __future__ import annotations

import argparse
import dataclasses
import re

import torch

from ..config import FadeConfig
from ..engine import Acceleration
from ..errors import UserError


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help states its default: "(default: X)" is added unless the help already says it; flags
    that are off unless given and options without a fixed default say so in their own words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(action, argparse.BooleanOptionalAction) and action.default is not None and "default" not in text:
            return f"{text} (default: {'on' if action.default else 'off'})"
        # identity, not ==: a default of 0 (0 == False) is a value to state
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)) \
                or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    group = parser.add_argument_group(
        "PixelFade settings (FadeConfig: the paper's values, plus our per-image rules: relative ε, finishing steps, "
        "backtracking CO step)")
    for item in dataclasses.fields(FadeConfig):
        if item.name in exclude:
            continue
        flag = "--" + item.name.replace("_", "-")
        help_text = item.metadata["help"]
        if isinstance(item.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=item.default, help=help_text)
        else:
            group.add_argument(flag, type=type(item.default), default=item.default, help=help_text,
                               choices=item.metadata.get("choices"))


def config_from_args(args: argparse.Namespace, **overrides) -> FadeConfig:
    """The FadeConfig of the parsed options; a bad value is a UserError that names the options (``--final-steps``)
    where FadeConfig's own message names its fields (``FadeConfig.final_steps``)."""
    values = {item.name: getattr(args, item.name) for item in dataclasses.fields(FadeConfig) if hasattr(args, item.name)}
    values.update(overrides)
    try:
        return FadeConfig(**values)
    except ValueError as error:
        def option(match: re.Match) -> str:
            name = match.group(1)
            return "--" + name.replace("_", "-") if name in values and name not in overrides else match.group(0)

        raise UserError(re.sub(r"FadeConfig\.(\w+)", option, str(error))) from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models.registry import MODEL_NAMES
    from ..models.spec import MODEL_FORMATS

    group = parser.add_argument_group("the authorised Re-ID model")
    group.add_argument("--model", default="osnet_x0_25", metavar="SPEC",
                       help="; ".join(f"{f.usage}: {f.description}" for f in MODEL_FORMATS.values())
                            + f". Zoo names: {', '.join(MODEL_NAMES)} (`pixelfade models` describes them; "
                              f"osnet_x0_25 alone: SynthPed demo weights)")
    group.add_argument("--weights", metavar="FILE", help="older spelling of --model NAME:FILE")
    group.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                       help="the model's input size (default: what the model file records, else 256 128)")
    group.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                       help="per-channel input mean in [0, 1] pixel units (default: the file's, else ImageNet's)")
    group.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                       help="per-channel input std (default: the file's, else ImageNet's)")
    group.add_argument("--allow-pickle", action="store_true",
                       help="accept checkpoints that pickle Python objects (only for files you trust)")


def load_model_from_args(args: argparse.Namespace, device: torch.device):
    from ..models.spec import load_model_spec

    model = load_model_spec(args.model, weights=args.weights, input_size=args.input_size, mean=args.mean,
                            std=args.std, allow_pickle=args.allow_pickle)
    return model.to(device)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when a GPU is available, else cpu)")


def resolve_device(name: str | None, local_rank: int | None = None) -> torch.device:
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (f"torch {torch.__version__} is a CPU-only build" if torch.version.cuda is None else
                   f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
            raise UserError(f"--device {name} but CUDA is not available here: {why}; use --device cpu")
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
        if (device.index or 0) >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} GPUs are visible")
    elif device.type != "cpu":
        raise UserError(f"--device {name}: only cpu and cuda are supported")
    return device


def add_acceleration_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed (how the model is evaluated; docs/performance.md has the measurements)")
    group.add_argument("--fold-batchnorm", action=argparse.BooleanOptionalAction, default=None,
                       help="fold eval-mode BatchNorm into the preceding layers (default: the run's on "
                            "--resume and refine; else tuned, see --tune; else on)")
    group.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                       help="NHWC memory layout for the model (default: the run's on --resume and refine; "
                            "else tuned, see --tune; else on with CUDA)")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                       help="bf16 autocast for the model; the image, targets and final ε check stay fp32")
    group.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                       help="torch.compile the model's forward and backward")
    group.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                       help="replay each step from a captured CUDA graph (default: on with CUDA)")


def acceleration_from_args(args: argparse.Namespace) -> Acceleration:
    return Acceleration(fold_batchnorm=args.fold_batchnorm, channels_last=args.channels_last, amp=args.amp,
                        compile=args.compile, cuda_graph=args.cuda_graph)


def add_storage_arguments(group, what: str, default: str | None = "png", unset: str = "") -> None:
    """--format and --quality: how ``what`` is stored (the figures are those of the decoded files). ``unset``:
    what no --format means, where ``default`` is None."""
    from ..storage_format import DEFAULT_QUALITY, FORMATS

    group.add_argument("--format", default=default, choices=FORMATS,
                       help=f"how {what} is stored: png (lossless), or jpeg / webp (lossy: every figure is that of "
                            f"the decoded file: protection optimises through a stand-in of the codec, and a file that misses ε "
                            f"gets a bounded fallback through the real codec)"
                            + (f" (default: {unset})" if default is None else ""))
    group.add_argument("--quality", type=int, metavar="Q",
                       help=f"jpeg / webp quality, 1..100 (default: {DEFAULT_QUALITY}); refused with png")


def storage_from_args(args: argparse.Namespace):
    """The StorageFormat of --format / --quality (None without --format, where it has no default)."""
    from ..storage_format import StorageFormat

    if args.format is None:
        if args.quality is not None:
            raise UserError(f"--quality {args.quality} needs --format jpeg or webp")
        return None
    try:
        return StorageFormat(args.format, args.quality)
    except ValueError as error:
        raise UserError(str(error)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
