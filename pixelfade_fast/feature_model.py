"""What the package assumes of a feature model, in one leaf module that the engine and the models both import:
its output holds [B, D] features (``features_of``) and its weights sit on one device (``model_device``).
Its input space is ``input_space.InputSpace.of(model)``.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn


def features_of(output) -> torch.Tensor:
    """The [B, D] feature tensor of a model output: a tensor, the first of a tuple, or a dict's features entry."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict):
        for key in ("features", "feat", "embeddings", "embedding"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
    raise TypeError(f"the model returned {type(output).__name__}; expected a [B, D] feature tensor, a tuple whose "
                    f"first item is one, or a dict with a 'features' entry")


def model_device(model: nn.Module, fallback: torch.device | str = "cpu") -> torch.device:
    """The device of the model's first parameter or buffer; ``fallback`` for a model with neither."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device(fallback)
