"""build_model: model names -> ReIDModel, randomly initialised or loaded from a local file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial

import torch

from .agw import AGW
from .backbone import ReIDBackbone
from .loading import load_weights
from .osnet import OSNET_CHANNELS, OSNet
from .tiny import TinyCNN
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, ReIDModel

_BUILDERS: dict[str, Callable[..., ReIDBackbone]] = {
    **{name: partial(OSNet, channels) for name, channels in OSNET_CHANNELS.items()},
    "osnet_ibn_x1_0": partial(OSNet, OSNET_CHANNELS["osnet_x1_0"], instance_norm=True),
    "agw_r50_nl": AGW,
    "tiny_cnn": TinyCNN,
}
_ALIASES = {"resnet50_nl": "agw_r50_nl"}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_model(name: str, num_classes: int = 0, pretrained_path: str | os.PathLike | None = None, *,
                input_size: tuple[int, int] = (256, 128), mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD, feature_layer: str | None = None,
                model_id: str | None = None, seed: int | None = None, strict: bool = True,
                allow_pickle: bool = False, **backbone_kwargs) -> ReIDModel:
    """A ReIDModel (eval mode) for one of MODEL_NAMES (or the alias resnet50_nl).

    Weights are random (Kaiming init; with ``seed`` the init is reproducible and leaves
    the global RNG untouched) unless ``pretrained_path`` names a local checkpoint, loaded
    by :func:`load_weights` (``strict``, ``allow_pickle``). Nothing is ever downloaded.
    ``num_classes`` > 0 adds an identity classifier (only so that training checkpoints
    load with all keys; features never use it). ``backbone_kwargs`` go to the backbone
    (OSNet: instance_norm, feature_dim; AGW: last_stride, non_local_counts, gem_p).
    ``model_id`` defaults to the name, plus ":<file name>" when weights are loaded.
    """
    canonical = _ALIASES.get(name, name)
    if canonical not in _BUILDERS:
        raise ValueError(f"unknown model name {name!r}; known names: {', '.join(MODEL_NAMES)} "
                         f"(aliases: {', '.join(f'{a}={c}' for a, c in _ALIASES.items())})")
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
