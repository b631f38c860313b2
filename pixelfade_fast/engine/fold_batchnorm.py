"""Fold eval-mode BatchNorm into the convolution or linear layer that feeds it, on any module tree.

A frozen model's BatchNorm is an affine map per channel, so ``bn(conv(x))`` equals one convolution with
rescaled weights and a bias. Folding removes a memory-bound pass (forward and backward) per BatchNorm.

How pairs are found: one probe forward with hooks records which tensor each Conv/Linear produced and which
tensor each BatchNorm consumed; a BatchNorm whose input *is* the output of a layer called once (and is itself
called once) is paired with it. This works on any module tree — the zoo's models and imported ONNX graphs —
without tracing the forward code. A hook cannot see whether the layer's output is also used elsewhere, so the
folded copy is checked against the original on the probe batch and refused (``FoldError``) when its features
move by more than ``tolerance`` (relative, in float64): a fold is exact up to rounding or it is not done.
The weight algebra is torch's own (``torch.nn.utils.fusion``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from ..feature_model import features_of

FOLD_TOLERANCE = 1e-5
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class FoldError(ValueError):
    """The folded model would not compute the original's features."""


@dataclass(frozen=True)
class FoldReport:
    folded: tuple[tuple[str, str], ...]  # (layer name, BatchNorm name) pairs
    relative_change: float  # ||f_folded - f|| / ||f|| on the probe batch


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return features_of(model(x)).double()


def _find_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    produced: dict[int, str] = {}
    consumed: dict[str, int] = {}
    calls: dict[str, int] = {}
    keep_alive: list[torch.Tensor] = []  # so that no recorded id is reused by a new tensor
    handles = []

    def layer_hook(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            produced[id(output)] = name
            keep_alive.append(output)
        return hook

    def norm_hook(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            consumed[name] = id(inputs[0])
            keep_alive.append(inputs[0])
        return hook

    for name, module in model.named_modules():
        if isinstance(module, _FOLDABLE):
            handles.append(module.register_forward_hook(layer_hook(name)))
        elif isinstance(module, _NORMS) and module.track_running_stats and module.running_mean is not None:
            handles.append(module.register_forward_hook(norm_hook(name)))
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
    pairs = []
    for norm_name, tensor_id in consumed.items():
        layer_name = produced.get(tensor_id)
        if layer_name is not None and calls[layer_name] == 1 and calls[norm_name] == 1:
            pairs.append((layer_name, norm_name))
    return pairs


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _fold_pair(model: nn.Module, layer_name: str, norm_name: str) -> None:
    layer = model.get_submodule(layer_name)
    norm = model.get_submodule(norm_name)
    if isinstance(layer, nn.Linear):
        weight, bias = fuse_linear_bn_weights(layer.weight, layer.bias, norm.running_mean, norm.running_var,
                                              norm.eps, norm.weight, norm.bias)
    else:
        weight, bias = fuse_conv_bn_weights(layer.weight, layer.bias, norm.running_mean, norm.running_var,
                                            norm.eps, norm.weight, norm.bias)
    layer.weight = nn.Parameter(weight.detach(), requires_grad=False)
    layer.bias = nn.Parameter(bias.detach(), requires_grad=False)
    _set_module(model, norm_name, nn.Identity())


def fold_batchnorm(model: nn.Module, probe: torch.Tensor, *,
                   tolerance: float = FOLD_TOLERANCE) -> tuple[nn.Module, FoldReport]:
    """A copy of ``model`` (eval mode, weights frozen) with every foldable BatchNorm folded into its layer.

    probe: a batch the model accepts (e.g. random normalised images of its input size, batch >= 2); it is used to
    find the pairs and to check the folded copy. The fold and the check run in float64, where a correct fold is
    exact to ~1e-13, so the check tells a wrong pairing from rounding; the returned copy has the model's own
    dtype (its weights rounded once from the float64 fold). Raises FoldError when the folded features differ from
    the original's by more than ``tolerance`` (relative). The original model is not modified.
    """
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    original = copy.deepcopy(model).eval().double()
    for param in original.parameters():
        param.requires_grad_(False)
    folded = copy.deepcopy(original)
    probe = probe.double()
    pairs = _find_pairs(folded, probe)
    for layer_name, norm_name in pairs:
        _fold_pair(folded, layer_name, norm_name)
    with torch.no_grad():
        expected = _features(original, probe)
        got = _features(folded, probe)
    scale = float(torch.linalg.vector_norm(expected)) or 1.0
    change = float(torch.linalg.vector_norm(got - expected)) / scale
    if not change <= tolerance:
        raise FoldError(f"folding BatchNorm changed the features by {change:.2e} (relative; allowed {tolerance:g}); "
                        f"a folded layer's output is probably used elsewhere too. Run without BatchNorm folding.")
    return folded.to(dtype), FoldReport(tuple(pairs), change)
