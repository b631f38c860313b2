"""build_model: model names -> ReIDModel, randomly initialised or loaded from a local file.

MODEL_INFO says, for each name, what the network is, whose checkpoints it loads (the toolkit whose
module names it keeps) and which weights file, if any, ships with the package.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from .agw import AGW
from .backbone import ReIDBackbone
from .fastreid import FastReIDBoT
from .loading import load_weights
from .osnet import OSNET_CHANNELS, OSNet
from .osnet_ain import OSNET_AIN_CHANNELS, OSNetAIN
from .resnet import ResNet50
from .tiny import TinyCNN
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, ReIDModel

TORCHREID = "torchreid"  # KaiyangZhou/deep-person-reid
FASTREID = "fast-reid"  # JDAI-CV/fast-reid
REID_SURVEY = "ReID-Survey"  # mangye16/ReID-Survey
PIXELFADE = "pixelfade_fast"  # this package (no public checkpoints)


@dataclass(frozen=True)
class ModelInfo:
    """One line on a zoo model for listings: what it is, whose checkpoints it loads, bundled weights."""

    description: str
    toolkit: str  # TORCHREID, FASTREID, REID_SURVEY or PIXELFADE
    bundled_weights: str | None = None  # file name in pixelfade_fast/assets/, if weights ship with the package


_BUILDERS: dict[str, Callable[..., ReIDBackbone]] = {
    **{name: partial(OSNet, channels) for name, channels in OSNET_CHANNELS.items()},
    "osnet_ibn_x1_0": partial(OSNet, OSNET_CHANNELS["osnet_x1_0"], instance_norm=True),
    **{name: partial(OSNetAIN, channels) for name, channels in OSNET_AIN_CHANNELS.items()},
    "resnet50": ResNet50,
    "agw_r50_nl": AGW,
    "fastreid_bot_r50": FastReIDBoT,
    "fastreid_bot_r50_ibn": partial(FastReIDBoT, ibn=True),
    "tiny_cnn": TinyCNN,
}
_OSNET_WIDTHS = {"x1_0": "1.0", "x0_75": "0.75", "x0_5": "0.5", "x0_25": "0.25"}
_BUNDLED_WEIGHTS = {"osnet_x0_25": "osnet_x0_25_synthped.safetensors"}  # SynthPed demo weights
MODEL_INFO: dict[str, ModelInfo] = {
    **{f"osnet_{w}": ModelInfo(f"OSNet x{m} (torchreid osnet_{w}), 512-d fc embedding", TORCHREID,
                               _BUNDLED_WEIGHTS.get(f"osnet_{w}")) for w, m in _OSNET_WIDTHS.items()},
    "osnet_ibn_x1_0": ModelInfo("OSNet-IBN x1.0 (torchreid osnet_ibn_x1_0), 512-d fc embedding", TORCHREID),
    **{f"osnet_ain_{w}": ModelInfo(f"OSNet-AIN x{m} (torchreid osnet_ain_{w}): OSNet with instance norm "
                                   f"in the residual branches, 512-d fc embedding", TORCHREID)
       for w, m in _OSNET_WIDTHS.items()},
    "resnet50": ModelInfo("ResNet-50 (torchreid resnet50): last stride 2, 2048-d average-pooled feature",
                          TORCHREID),
    "agw_r50_nl": ModelInfo("AGW (ReID-Survey resnet50_nl): ResNet-50 + non-local blocks, GeM pooling, "
                            "2048-d BNNeck feature", REID_SURVEY),
    "fastreid_bot_r50": ModelInfo("BoT ResNet-50 (fast-reid bagtricks_R50): last stride 1, average pooling, "
                                  "2048-d BNNeck feature", FASTREID),
    "fastreid_bot_r50_ibn": ModelInfo("BoT ResNet-50-IBN-a (fast-reid bagtricks_R50-ibn): last stride 1, "
                                      "average pooling, 2048-d BNNeck feature", FASTREID),
    "tiny_cnn": ModelInfo("50k-parameter CNN for fast tests, 64-d feature", PIXELFADE),
}
_ALIASES = {"resnet50_nl": "agw_r50_nl", "bagtricks_R50": "fastreid_bot_r50",
            "bagtricks_R50-ibn": "fastreid_bot_r50_ibn"}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def canonical_name(name: str) -> str:
    """The MODEL_NAMES entry for a name or alias; ValueError listing the known names otherwise."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _BUILDERS:
        raise ValueError(f"unknown model name {name!r}; known names: {', '.join(MODEL_NAMES)} "
                         f"(aliases: {', '.join(f'{a}={c}' for a, c in _ALIASES.items())})")
    return canonical


@functools.lru_cache(maxsize=None)
def _cached_layout(name: str, kwargs: tuple) -> dict[str, tuple[int, ...]]:
    # Built on the CPU: construction on the meta device is slower for these many small modules.
    backbone = _BUILDERS[name](**dict(kwargs))
    return {k: tuple(v.shape) for k, v in backbone.state_dict().items()}


def backbone_layout(name: str, **backbone_kwargs) -> dict[str, tuple[int, ...]]:
    """{state-dict key: shape} of the backbone ``name`` (without classifier) built with backbone_kwargs."""
    return dict(_cached_layout(canonical_name(name), tuple(sorted(backbone_kwargs.items()))))


def build_model(name: str, num_classes: int = 0, pretrained_path: str | os.PathLike | None = None, *,
                input_size: tuple[int, int] = (256, 128), mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD, feature_layer: str | None = None,
                model_id: str | None = None, seed: int | None = None, strict: bool = True,
                allow_pickle: bool = False, **backbone_kwargs) -> ReIDModel:
    """A ReIDModel (eval mode) for one of MODEL_NAMES (or an alias).

    Weights are random (Kaiming init; with ``seed`` the init is reproducible and leaves
    the global RNG untouched) unless ``pretrained_path`` names a local checkpoint in the
    zoo's key names, loaded by :func:`load_weights` (``strict``, ``allow_pickle``); for a
    toolkit's checkpoint (fast-reid key names, preprocessing recorded in the file) use
    checkpoints.load_checkpoint_model. Nothing is ever downloaded.
    ``num_classes`` > 0 adds an identity classifier (only so that training checkpoints
    load with all keys; features never use it). ``backbone_kwargs`` go to the backbone
    (OSNet: instance_norm, feature_dim; OSNet-AIN: feature_dim; ResNet-50: last_stride, ibn,
    stem_pool_kind; AGW: last_stride, non_local_counts, gem_p; fast-reid BoT: last_stride,
    pool, stem_pool_kind). ``model_id`` defaults to the name, plus ":<file name>" when
    weights are loaded.
    """
    canonical = canonical_name(name)
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0 (0: no classifier), got {num_classes!r}")
    if seed is None:
        backbone = _BUILDERS[canonical](num_classes=num_classes, **backbone_kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = _BUILDERS[canonical](num_classes=num_classes, **backbone_kwargs)
    if model_id is None:
        model_id = canonical
        if pretrained_path is not None:
            model_id += ":" + os.path.basename(pretrained_path)
    model = ReIDModel(backbone, input_size=input_size, mean=mean, std=std,
                      feature_layer=feature_layer, model_id=model_id)
    if pretrained_path is not None:
        load_weights(model, pretrained_path, strict=strict, allow_pickle=allow_pickle)
    return model
