"""``--model SPEC``: the user's own model from one string.

    NAME               a zoo name with bundled weights (only osnet_x0_25: SynthPed demo weights)
    NAME:CHECKPOINT    a zoo architecture with a local checkpoint (torchreid, ReID-Survey, fast-reid, safetensors)
    FILE.onnx          an ONNX export, converted to a differentiable module
    package.module:fn  a Python callable returning an nn.Module that maps normalised images to [B, D] features

Input size and mean/std come from the flags when given, else from what the file records (safetensors metadata,
a fast-reid checkpoint's pixel_mean/pixel_std, ONNX metadata or a static input shape, attributes of the
callable's module), else torchreid's defaults (256x128, ImageNet mean/std).
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Sequence

from torch import nn

from ..errors import UserError
from .extractor import FeatureExtractor
from .registry import MODEL_INFO, MODEL_NAMES, canonical_name
from .wrapper import IMAGENET_MEAN, IMAGENET_STD

DEFAULT_INPUT_SIZE = (256, 128)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED = {name: ASSETS / info.bundled_weights for name, info in MODEL_INFO.items() if info.bundled_weights}
_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def _pick(flag, recorded, default):
    return tuple(flag) if flag is not None else (tuple(recorded) if recorded is not None else tuple(default))


def _zoo(name: str, checkpoint: Path | None, input_size, mean, std, allow_pickle: bool) -> nn.Module:
    from .checkpoints import load_checkpoint_model

    path = checkpoint if checkpoint is not None else BUNDLED.get(canonical_name(name))
    if path is None:
        raise UserError(f"--model {name}: there are no bundled weights for {name} (only for "
                        f"{', '.join(BUNDLED)}); give your checkpoint as --model {name}:CHECKPOINT")
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    try:
        return load_checkpoint_model(name, path, input_size=_size_or_none(input_size), mean=mean, std=std,
                                     allow_pickle=allow_pickle).model
    except (ValueError, FileNotFoundError) as error:
        raise UserError(f"--model {name}:{path}: {error}") from None


def _size_or_none(size) -> tuple[int, int] | None:
    return None if size is None else (int(size[0]), int(size[1]))


def _onnx(path: Path, input_size, mean, std) -> nn.Module:
    from .onnx import load_onnx

    if not path.is_file():
        raise UserError(f"ONNX file {path} not found")
    try:
        module, info = load_onnx(path)
    except ImportError as error:
        raise UserError(f"reading ONNX files needs the onnx package ({error}); pip install onnx") from None
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None
    size = input_size if input_size is not None else info.input_size
    if size is None:
        raise UserError(f"{path} does not fix its input height and width (dynamic axes) and records no input size: "
                        f"pass --input-size H W")
    return FeatureExtractor(module, input_size=size, mean=_pick(mean, info.mean, IMAGENET_MEAN),
                            std=_pick(std, info.std, IMAGENET_STD), model_id=f"onnx:{path.name}")


def _callable(spec: str, input_size, mean, std) -> nn.Module:
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except ImportError as error:
        raise UserError(f"--model {spec}: cannot import {module_name} ({error})") from None
    except AttributeError:
        raise UserError(f"--model {spec}: {module_name} has no attribute {attribute!r}") from None
    if not callable(factory):
        raise UserError(f"--model {spec}: {attribute} is not callable")
    module = factory()
    if not isinstance(module, nn.Module):
        raise UserError(f"--model {spec}: {attribute}() returned {type(module).__name__}, not a torch.nn.Module")
    own_size = getattr(module, "input_size", None)
    size = _pick(input_size, own_size, DEFAULT_INPUT_SIZE)
    net_mean = getattr(module, "mean", None)
    net_std = getattr(module, "std", None)
    to_list = (lambda v: None if v is None else [float(x) for x in (v.reshape(-1).tolist() if hasattr(v, "reshape")
                                                                      else v)])
    return FeatureExtractor(module, input_size=size, mean=_pick(mean, to_list(net_mean), IMAGENET_MEAN),
                            std=_pick(std, to_list(net_std), IMAGENET_STD), model_id=f"callable:{spec}")


def _is_alias(name: str) -> bool:
    try:
        canonical_name(name)
    except ValueError:
        return False
    return True


def load_model_spec(spec: str, *, weights: str | None = None, input_size: Sequence[int] | None = None,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    allow_pickle: bool = False) -> nn.Module:
    """The model named by ``spec`` (see the module doc) on the CPU, with ``input_size``, ``mean``, ``std`` and
    ``model_id`` attributes; UserError with a message for anything that does not fit. ``weights`` is the older
    spelling of ``NAME:CHECKPOINT`` (``--model NAME --weights FILE``)."""
    spec = spec.strip()
    if weights is not None:
        if ":" in spec or spec.lower().endswith(".onnx"):
            raise UserError("--weights goes with a plain zoo name (--model NAME --weights FILE); "
                            "or write --model NAME:CHECKPOINT / --model FILE.onnx")
        spec = weights if weights.lower().endswith(".onnx") else f"{spec}:{weights}"
    if spec.lower().endswith(".onnx"):
        return _onnx(Path(spec), input_size, mean, std)
    name, sep, rest = spec.partition(":")
    if name in MODEL_NAMES or _is_alias(name):
        return _zoo(name, Path(rest) if sep else None, input_size, mean, std, allow_pickle)
    if _CALLABLE.match(spec):
        return _callable(spec, input_size, mean, std)
    raise UserError(f"--model {spec!r} is not a zoo name ({', '.join(MODEL_NAMES)}), NAME:CHECKPOINT, FILE.onnx or "
                    f"package.module:callable; `pixelfade models` lists the names")
