"""load_checkpoint_model: a Re-ID checkpoint of a named zoo model, in the container its toolkit saves,
as a ReIDModel, plus what the file says about preprocessing.

Containers read (never running pickled code unless allow_pickle):
  torchreid    {'state_dict': ..., 'epoch', 'rank1', 'optimizer', ...} (torchreid/utils/torchtools.py
               save_checkpoint), keys often prefixed "module." (DataParallel); or a plain state dict
  fast-reid    {'model': ..., 'optimizer', 'scheduler', 'iteration'} (fastreid/utils/checkpoint.py), keys
               backbone.* / heads.*; from 2020-05-25 until commit 883fd4a (2021-03-23) also the
               Baseline's pixel_mean / pixel_std buffers, on the 0-255 pixel scale
  ReID-Survey  a plain state dict (ignite's ModelCheckpoint saves model.state_dict())
  safetensors  tensors plus str metadata (save_safetensors records input_size, mean, std, feature_layer)
Where the file says nothing: torchreid's defaults, 256x128 input and ImageNet mean / std.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .fastreid import OLD_HEAD_PREFIX, PIXEL_BUFFERS, fastreid_to_zoo_keys
from .loading import (BACKBONE_OPTIONS_KEY, CLASSIFIER_PREFIX, LoadReport, fit_problems, load_weights,
                      read_checkpoint, safetensors_metadata, state_dict_of)
from .registry import FASTREID, MODEL_INFO, backbone_layout, build_model, canonical_name
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, ReIDModel

DEFAULT_INPUT_SIZE = (256, 128)  # torchreid's scripts/default_config.py: data.height 256, data.width 128


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint file says besides its weights; None where it says nothing."""

    container: str  # e.g. "{'model': ...} (fast-reid)", "safetensors", "state dict"
    mean: tuple[float, float, float] | None = None  # per-channel mean for pixels in [0, 1]
    std: tuple[float, float, float] | None = None
    input_size: tuple[int, int] | None = None  # (height, width)
    feature_layer: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # scalar entries: epoch, rank1, iteration, ...
    notes: tuple[str, ...] = ()  # which variant of the architecture the file's keys selected, and why


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: ReIDModel
    facts: CheckpointFacts
    report: LoadReport  # what load_weights copied and dropped (the classifier, always)


@dataclass(frozen=True)
class _Adapted:
    """A toolkit's state dict in zoo key names, the constructor options its keys imply, and its facts."""

    state: dict[str, torch.Tensor]
    backbone_kwargs: dict[str, object]
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    notes: tuple[str, ...] = ()


_CEIL_STEM_NOTE = ("stem max pool 'ceil', as in fast-reid since commit 42cadae (2020-11-06); a checkpoint trained "
                   "with older code (heads.bottleneck.* keys from 2020-09-10 on) needs stem_pool_kind='padded'")


def _pixel_stat(state: Mapping[str, torch.Tensor], key: str) -> tuple[float, float, float] | None:
    values = state.get(key)
    if values is None:
        return None
    if values.numel() != 3:
        raise ValueError(f"the checkpoint's {key} has {values.numel()} values; expected 3 (one per RGB channel)")
    # fast-reid normalises 0-255 pixels; ReIDModel takes pixels in [0, 1].
    return tuple(float(v) / 255.0 for v in values.flatten())  # type: ignore[return-value]


def _adapt(toolkit: str, state: Mapping[str, torch.Tensor]) -> _Adapted:
    if toolkit != FASTREID:
        return _Adapted(dict(state), {})
    kwargs: dict[str, object] = {}
    notes = []
    if "heads.pool_layer.p" in state:
        kwargs["pool"] = "gem"
        notes.append("heads.pool_layer.p in the file: GeM pooling (bagtricks configs use average pooling)")
    if any(k.startswith(OLD_HEAD_PREFIX) for k in state):
        kwargs["stem_pool_kind"] = "padded"
        notes.append("heads.bnneck.* keys (fast-reid's BNneckHead, before 2020-09-10, as in the v0.1.1 model "
                     "zoo): the padded stem max pool of that code")
    return _Adapted(fastreid_to_zoo_keys(state), kwargs, _pixel_stat(state, PIXEL_BUFFERS[0]),
                    _pixel_stat(state, PIXEL_BUFFERS[1]), tuple(notes))


def _first(*values):
    """The first value that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def _scalar_entries(obj: object) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): str(v.item() if isinstance(v, np.generic) else v) for k, v in obj.items()
            if isinstance(v, (bool, int, float, str, np.generic))}


def _container(obj: object) -> str:
    if isinstance(obj, nn.Module):
        return "pickled nn.Module"
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), (Mapping, nn.Module)):
        return "{'state_dict': ...} (torchreid)"
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), (Mapping, nn.Module)):
        return "{'model': ...} (fast-reid)"
    return "state dict"


def _json_metadata(metadata: Mapping[str, str], key: str, path: str, length: int) -> list | None:
    if key not in metadata:
        return None
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError:
        value = None
    if not (isinstance(value, list) and len(value) == length and all(isinstance(v, (int, float)) for v in value)):
        raise ValueError(f"{path!r}: metadata {key!r} is {metadata[key]!r}, expected a JSON list of {length} numbers")
    return value


def _safetensors_facts(path: str) -> tuple[CheckpointFacts, dict[str, object]]:
    """Facts and constructor options from the header save_safetensors writes."""
    metadata = safetensors_metadata(path)
    mean, std = (_json_metadata(metadata, key, path, 3) for key in ("mean", "std"))
    size = _json_metadata(metadata, "input_size", path, 2)
    try:
        options = json.loads(metadata.get(BACKBONE_OPTIONS_KEY, "{}"))
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise ValueError(f"{path!r}: metadata {BACKBONE_OPTIONS_KEY!r} is not a JSON object of constructor options")
    facts = CheckpointFacts(container="safetensors", mean=tuple(mean) if mean else None,
                            std=tuple(std) if std else None, input_size=(int(size[0]), int(size[1])) if size else None,
                            feature_layer=metadata.get("feature_layer"), metadata=metadata)
    return facts, options


def _fits(state: Mapping[str, torch.Tensor], layout: Mapping[str, tuple[int, ...]]) -> bool:
    def core(keys):
        return {k for k in keys if not k.endswith("num_batches_tracked") and not k.startswith(CLASSIFIER_PREFIX)}
    return core(state) == core(layout) and all(tuple(state[k].shape) == layout[k] for k in core(layout))


def matching_models(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The zoo names whose layout (after their toolkit's key mapping) the state dict has exactly."""
    names = []
    for name, info in MODEL_INFO.items():
        try:
            adapted = _adapt(info.toolkit, state)
        except ValueError:
            continue
        if _fits(adapted.state, backbone_layout(name, **adapted.backbone_kwargs)):
            names.append(name)
    return names


def _mismatch_hint(state: Mapping[str, torch.Tensor]) -> str:
    names = matching_models(state)
    if not names:
        return (" Its tensors fit no zoo model under any toolkit's key names either: check that the file is "
                "a Re-ID checkpoint of an architecture in pixelfade_fast.models.MODEL_INFO.")
    return (" Its tensors are those of " + " / ".join(f"{n} ({MODEL_INFO[n].toolkit})" for n in names) +
            ": load it under that name.")


def load_checkpoint_model(name: str, path: str | os.PathLike, *, input_size: tuple[int, int] | None = None,
                          mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                          feature_layer: str | None = None, model_id: str | None = None,
                          allow_pickle: bool = False, **backbone_kwargs) -> LoadedCheckpoint:
    """The zoo model ``name`` (MODEL_NAMES or an alias) with the weights of the checkpoint at ``path``.

    Reads the toolkit containers listed in the module docstring, maps the toolkit's key names to
    the zoo's (fast-reid: fastreid.fastreid_to_zoo_keys), picks the architecture variant the keys
    imply (fast-reid: GeM pooling, stem max pool), and drops the training-only classifier.
    Preprocessing: an argument given here, else what the file records, else torchreid's defaults
    (256x128, ImageNet mean / std). ``backbone_kwargs`` override the constructor options.
    ``model_id`` defaults to "<name>:<file name>".

    Raises FileNotFoundError for a missing file and ValueError for a file that is not a
    checkpoint, or whose tensors do not fit ``name`` (listing missing / unexpected / mis-shaped
    keys, and the zoo names the tensors do fit, if any).
    """
    canonical = canonical_name(name)
    toolkit = MODEL_INFO[canonical].toolkit
    path = os.fspath(path)
    obj = read_checkpoint(path, allow_pickle)
    state = state_dict_of(obj)
    try:
        adapted = _adapt(toolkit, state)
    except ValueError as err:
        raise ValueError(f"{path!r}: {err}") from err
    if path.endswith(".safetensors"):
        facts, file_options = _safetensors_facts(path)
    else:
        facts, file_options = CheckpointFacts(container=_container(obj), metadata=_scalar_entries(obj)), {}
    options = {**adapted.backbone_kwargs, **file_options, **backbone_kwargs}
    notes = adapted.notes
    if toolkit == FASTREID and "stem_pool_kind" not in options:
        notes += (_CEIL_STEM_NOTE,)
    facts = replace(facts, mean=_first(facts.mean, adapted.mean), std=_first(facts.std, adapted.std), notes=notes)
    model = build_model(canonical, input_size=tuple(_first(input_size, facts.input_size, DEFAULT_INPUT_SIZE)),
                        mean=_first(mean, facts.mean, IMAGENET_MEAN), std=_first(std, facts.std, IMAGENET_STD),
                        feature_layer=_first(feature_layer, facts.feature_layer),
                        model_id=_first(model_id, f"{canonical}:{os.path.basename(path)}"), **options)
    problems = fit_problems(model, adapted.state)
    if problems:
        raise ValueError(f"{path!r} cannot be loaded as {canonical} ({toolkit} layout): " + "; ".join(problems)
                         + "." + _mismatch_hint(state))
    report = load_weights(model, adapted.state)
    return LoadedCheckpoint(model=model, facts=facts, report=report)
