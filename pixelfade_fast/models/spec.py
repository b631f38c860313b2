"""Model specs: the user's own model from one string, through a registry of formats.

    NAME               a zoo name with bundled weights (only osnet_x0_25: SynthPed demo weights)
    NAME:CHECKPOINT    a zoo architecture with a local checkpoint (torchreid, ReID-Survey, fast-reid, safetensors)
    FILE.onnx          an ONNX export, converted to a differentiable module
    package.module:fn  a Python callable returning an nn.Module that maps normalised images to [B, D] features

Each is a ``ModelFormat`` record (how it is written, which specs it takes, its loader); ``load_model_spec``
tries them in registration order, and the CLI's ``--model`` help and ``pixelfade models`` list them. A new
format is one loader and one ``register_model_format`` call. Input size and mean/std come from the options when
given, else from what the file records (safetensors metadata, a fast-reid checkpoint's pixel_mean/pixel_std,
ONNX metadata or a static input shape, attributes of the callable's module), else torchreid's defaults (256x128,
ImageNet mean/std). Errors are UserError with a message that names the spec (no command-line flag: Python
callers see them too).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from torch import nn

from ..errors import UserError
from ..registry import Registry
from .extractor import FeatureExtractor
from .registry import MODEL_INFO, MODEL_NAMES, canonical_name
from .wrapper import IMAGENET_MEAN, IMAGENET_STD

DEFAULT_INPUT_SIZE = (256, 128)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED = {name: ASSETS / info.bundled_weights for name, info in MODEL_INFO.items() if info.bundled_weights}
_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


@dataclass(frozen=True)
class ModelOptions:
    """What the caller says about the model besides the spec; None: what the file records, else the default."""

    input_size: Sequence[int] | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    allow_pickle: bool = False


@dataclass(frozen=True)
class ModelFormat:
    """One way of writing a model spec."""

    name: str
    usage: str  # how the spec is written, e.g. "NAME:CHECKPOINT"
    description: str
    matches: Callable[[str], bool]  # does this format take the spec?
    load: Callable[[str, ModelOptions], nn.Module]  # spec -> the model on the CPU (input_size, mean, std, model_id)


MODEL_FORMATS: Registry[ModelFormat] = Registry("model format")
register_model_format = MODEL_FORMATS.register  # (model_format) -> model_format, tried after the registered ones


def _pick(flag, recorded, default):
    return tuple(flag) if flag is not None else (tuple(recorded) if recorded is not None else tuple(default))


def _is_zoo(spec: str) -> bool:
    name = spec.partition(":")[0]
    return name in MODEL_NAMES or _is_alias(name)


def _zoo(spec: str, options: ModelOptions) -> nn.Module:
    from .checkpoints import load_checkpoint_model

    name, sep, rest = spec.partition(":")
    path = Path(rest) if sep else BUNDLED.get(canonical_name(name))
    if path is None:
        raise UserError(f"model {name!r}: there are no bundled weights for {name} (only for "
                        f"{', '.join(BUNDLED)}); give your checkpoint as {name}:CHECKPOINT")
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    try:
        return load_checkpoint_model(name, path, input_size=_size_or_none(options.input_size), mean=options.mean,
                                     std=options.std, allow_pickle=options.allow_pickle).model
    except (ValueError, FileNotFoundError) as error:
        raise UserError(f"model {name}:{path}: {error}") from None


def _size_or_none(size) -> tuple[int, int] | None:
    return None if size is None else (int(size[0]), int(size[1]))


def _onnx(spec: str, options: ModelOptions) -> nn.Module:
    from .onnx import load_onnx

    path, input_size, mean, std = Path(spec), options.input_size, options.mean, options.std
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
                        f"give the input size (H W) explicitly")
    return FeatureExtractor(module, input_size=size, mean=_pick(mean, info.mean, IMAGENET_MEAN),
                            std=_pick(std, info.std, IMAGENET_STD), model_id=f"onnx:{path.name}")


def _callable(spec: str, options: ModelOptions) -> nn.Module:
    input_size, mean, std = options.input_size, options.mean, options.std
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except ImportError as error:
        raise UserError(f"model {spec}: cannot import {module_name} ({error})") from None
    except AttributeError:
        raise UserError(f"model {spec}: {module_name} has no attribute {attribute!r}") from None
    if not callable(factory):
        raise UserError(f"model {spec}: {attribute} is not callable")
    module = factory()
    if not isinstance(module, nn.Module):
        raise UserError(f"model {spec}: {attribute}() returned {type(module).__name__}, not a torch.nn.Module")
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


def _checkpoint_hint(spec: str) -> str:
    """For a spec that is a checkpoint file: the zoo names its tensors fit (read without unpickling objects)."""
    from .checkpoints import matching_models
    from .loading import read_checkpoint, state_dict_of

    try:
        names = matching_models(state_dict_of(read_checkpoint(spec, allow_pickle=False)))
    except (ValueError, OSError) as error:
        return f"; {spec} is a file but not a checkpoint read here ({error})"
    if not names:
        return (f"; {spec} is a checkpoint whose tensors fit no zoo model: give its architecture as "
                f"NAME:{spec}, or load it in Python and give package.module:callable")
    return f"; {spec} is a checkpoint: write " + " or ".join(f"{name}:{spec}" for name in names)


def load_model_spec(spec: str, *, weights: str | None = None, input_size: Sequence[int] | None = None,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    allow_pickle: bool = False) -> nn.Module:
    """The model named by ``spec`` (see the module doc) on the CPU, with ``input_size``, ``mean``, ``std`` and
    ``model_id`` attributes; UserError with a message for anything that does not fit. ``weights`` is the older
    spelling of ``NAME:CHECKPOINT`` (``--model NAME --weights FILE``)."""
    spec = spec.strip()
    if weights is not None:
        if ":" in spec or spec.lower().endswith(".onnx"):
            raise UserError("weights go with a plain zoo name (NAME with weights FILE); "
                            "or write the spec as NAME:CHECKPOINT / FILE.onnx")
        spec = weights if weights.lower().endswith(".onnx") else f"{spec}:{weights}"
    options = ModelOptions(input_size=input_size, mean=mean, std=std, allow_pickle=allow_pickle)
    for model_format in MODEL_FORMATS.values():
        if model_format.matches(spec):
            return model_format.load(spec, options)
    hint = _checkpoint_hint(spec) if Path(spec).is_file() else ""
    raise UserError(f"model {spec!r} is not a zoo name ({', '.join(MODEL_NAMES)}) and fits no model format "
                    f"({'; '.join(f.usage for f in MODEL_FORMATS.values())}){hint}")


register_model_format(ModelFormat("onnx", "FILE.onnx", "an ONNX export, converted to a differentiable module",
                                  lambda spec: spec.lower().endswith(".onnx"), _onnx))
register_model_format(ModelFormat("zoo", "NAME or NAME:CHECKPOINT",
                                  "a zoo name with bundled weights, or a zoo architecture with a local checkpoint "
                                  "(torchreid, ReID-Survey, fast-reid or safetensors file)", _is_zoo, _zoo))
register_model_format(ModelFormat("callable", "package.module:callable",
                                  "a Python callable returning an nn.Module that maps normalised images to [B, D] "
                                  "features", lambda spec: bool(_CALLABLE.match(spec)), _callable))
