"""Loading and saving model weights (torch checkpoints and safetensors), never downloading."""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic_file import write_bytes_atomic
from .wrapper import ReIDModel

log = logging.getLogger(__name__)

BACKBONE_OPTIONS_KEY = "backbone_options"  # safetensors metadata: JSON of ReIDBackbone.construction_options()
CLASSIFIER_PREFIX = "classifier."  # identity logits: training only, never used for features
_LIST_LIMIT = 10


@dataclass(frozen=True)
class LoadReport:
    """What load_weights did: how many tensors it copied and which checkpoint entries it left out."""

    loaded: int
    dropped: tuple[str, ...]  # checkpoint keys not loaded: classifier keys, others only if strict=False
    not_loaded: tuple[str, ...]  # model keys left at their previous values


def _numpy_scalar_globals() -> list:
    """Globals needed to unpickle numpy scalars (torchreid stores e.g. rank1 as np.float32)
    under weights_only=True; rebuilding numpy scalars and dtypes runs no user code."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.bool_, np.int32, np.int64, np.float16, np.float32, np.float64)]
    return [np.dtype, (scalar, "numpy.core.multiarray.scalar"),
            (scalar, "numpy._core.multiarray.scalar"), *dtype_classes]


def read_checkpoint(path: str, allow_pickle: bool = False) -> object:
    """The object stored in a torch checkpoint (weights_only unless allow_pickle) or a .safetensors file
    (a dict of tensors); ValueError, saying why, for a file that is neither."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r}")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(path, device="cpu")
        except SafetensorError as err:
            raise ValueError(f"could not read {path!r} as a safetensors file: {err}") from err
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch reports the refused object as "Unsupported global: GLOBAL <name> ...".
        detail = str(err).partition("WeightsUnpickler error:")[2].strip().split("\n")[0] or str(err)
        if "Unsupported global" not in detail:
            raise ValueError(f"could not read {path!r} as a torch checkpoint: {detail}") from err
        if not allow_pickle:
            raise ValueError(
                f"{path!r} holds pickled Python objects besides tensors (for example a whole "
                f"nn.Module, as some training code saves), which weights_only loading refuses: "
                f"{detail.split(' was not')[0]}. If you trust the file, pass allow_pickle=True."
            ) from err
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except (ImportError, AttributeError) as load_err:
            raise ValueError(f"{path!r} pickles objects whose code is not importable here ({load_err}); "
                             f"re-save its state_dict() where that code is available") from load_err
    except (RuntimeError, EOFError, UnicodeDecodeError, IndexError, KeyError, ValueError) as err:
        # what the unpickler raises on bytes that are not a pickle varies with their content
        raise ValueError(f"could not read {path!r} as a torch checkpoint: {err}") from err


def _unwrap_checkpoint(obj: object) -> Mapping[str, object]:
    """The state dict inside a checkpoint: the object itself, obj['state_dict'] (torchreid),
    obj['model'] (common trainers) or module.state_dict() for a pickled nn.Module."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, expected a state dict "
                         f"(a mapping of parameter names to tensors)")
    for key in ("state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, (Mapping, nn.Module)):
            return _unwrap_checkpoint(inner)
    return obj


def state_dict_of(obj: object) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint object under their model key names (see load_weights)."""
    raw = _unwrap_checkpoint(obj)
    not_tensors = [k for k, v in raw.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"checkpoint is not a state dict: entries {not_tensors[:_LIST_LIMIT]} are not "
                         f"tensors; pass a state dict or a checkpoint with a 'state_dict' or 'model' entry")
    # DataParallel/DistributedDataParallel prefix every key with "module.".
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in raw.items()}
    # A state dict of a whole ReIDModel prefixes every key with "backbone.".
    if state and all(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items()}
    return state


def _listing(title: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = f", ... ({len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else ""
    return f"{title} ({len(keys)}): {shown}{more}"


def _compare(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]
             ) -> tuple[list[str], dict[str, torch.Tensor], list[str]]:
    """(classifier keys to drop, the other entries, listings of missing / unexpected / mis-shaped keys).

    Classifier keys without a slot of their shape, missing classifier keys and missing BatchNorm
    num_batches_tracked counters (old checkpoints) are no problem."""
    dropped = [k for k in state if k.startswith(CLASSIFIER_PREFIX)
               and (k not in expected or expected[k].shape != state[k].shape)]
    usable = {k: v for k, v in state.items() if k not in dropped}
    unexpected = [k for k in usable if k not in expected]
    mismatched = [f"{k} (checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)})"
                  for k, v in usable.items() if k in expected and expected[k].shape != v.shape]
    missing = [k for k in expected if k not in usable and not k.endswith("num_batches_tracked")
               and not k.startswith(CLASSIFIER_PREFIX)]
    problems = [_listing(t, keys) for t, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                                  ("shape mismatches", mismatched)) if keys]
    return dropped, usable, problems


def fit_problems(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` (zoo key names) from loading strictly into ``model`` (a ReIDModel: its
    backbone), as listings of missing / unexpected / mis-shaped keys; [] when it fits."""
    target = model.backbone if isinstance(model, ReIDModel) else model
    return _compare(target.state_dict(), state)[2]


def load_weights(model: nn.Module, source: str | os.PathLike | Mapping[str, object], strict: bool = True,
                 *, allow_pickle: bool = False) -> LoadReport:
    """Copy weights from ``source`` into ``model`` (a ReIDModel: into its backbone).

    ``source``: a path to a torch checkpoint (.pth, .pth.tar, .pt, ...; a plain state dict,
    {'state_dict': ...} as torchreid saves, or {'model': ...}; "module." prefixes are
    removed) or to a .safetensors file, or an in-memory state dict / checkpoint.
    Torch files are read with weights_only=True; ``allow_pickle=True`` also accepts
    checkpoints holding arbitrary pickled objects (only for files you trust).

    Classifier keys the model has no slot of that shape for (other number of identities,
    or num_classes=0) are dropped and logged; they play no part in features. Missing
    BatchNorm ``num_batches_tracked`` counters (old checkpoints) are tolerated. Any other
    missing, unexpected or wrongly shaped key raises ValueError when ``strict``; with
    ``strict=False`` the matching tensors are loaded and the rest reported.
    """
    target = model.backbone if isinstance(model, ReIDModel) else model
    if isinstance(source, (str, os.PathLike)):
        state = state_dict_of(read_checkpoint(os.fspath(source), allow_pickle))
    elif isinstance(source, Mapping):
        state = state_dict_of(source)
    else:
        raise TypeError(f"source must be a file path or a state dict, got {type(source).__name__}")

    expected = target.state_dict()
    dropped, usable, problems = _compare(expected, state)
    if problems and strict:
        raise ValueError(
            f"weights do not fit {type(target).__name__}: " + "; ".join(problems) +
            ". Check that the checkpoint was trained for this architecture and width (build_model name "
            "and options), or pass strict=False to load only the matching tensors."
        )
    loadable = {k: v for k, v in usable.items() if k in expected and expected[k].shape == v.shape}
    dropped += [k for k in usable if k not in loadable]
    target.load_state_dict(loadable, strict=False)
    report = LoadReport(loaded=len(loadable), dropped=tuple(dropped),
                        not_loaded=tuple(k for k in expected if k not in loadable))
    if dropped:
        log.info("load_weights: %s", _listing("checkpoint keys not used", dropped))
    if problems:
        log.warning("load_weights (strict=False): %s", "; ".join(problems))
    return report


def save_safetensors(model: nn.Module, path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write the weights of ``model`` (a ReIDModel: of its backbone) to a .safetensors file, atomically.

    ``metadata`` (str -> str) is stored in the header; for a ReIDModel its model_id,
    input_size, mean, std, feature_layer and the backbone's construction_options() are added
    (as JSON) unless given.
    """
    meta = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise TypeError(f"metadata must map str to str; offending entries (key: value type): {bad}")
    target = model
    if isinstance(model, ReIDModel):
        target = model.backbone
        meta.setdefault("model_id", model.model_id)
        meta.setdefault("input_size", json.dumps(list(model.input_size)))
        meta.setdefault("mean", json.dumps(model.mean.view(3).tolist()))
        meta.setdefault("std", json.dumps(model.std.view(3).tolist()))
        meta.setdefault("feature_layer", model.feature_layer)
        options = model.backbone.construction_options()
        if options:
            meta.setdefault(BACKBONE_OPTIONS_KEY, json.dumps(options))
    from safetensors.torch import save
    tensors = {k: v.detach().contiguous() for k, v in target.state_dict().items()}
    write_bytes_atomic(Path(path), save(tensors, metadata=meta))  # a reader never sees half the weights


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The str -> str header metadata of a .safetensors file ({} if it has none)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(os.fspath(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except SafetensorError as err:
        raise ValueError(f"could not read {os.fspath(path)!r} as a safetensors file: {err}") from err
