"""The authorised model as the engine sees it: the per-image loss, frozen weights, features of a pixel set."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..feature_model import features_of, model_device
from ..input_space import InputSpace

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def per_image_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_i = mean_d (f(x^p)_{i,d} - f0_{i,d})^2, one value per image (never a batch mean)."""
    return (features.float() - target).square().mean(dim=1)


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode and no weight gradients for the duration; the model's own settings are restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
        model.train(was_training)


@torch.no_grad()
def extract_features(model: nn.Module, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Features [N, D] (float32, on the CPU) of pixel images in [0, 1], in the model's input space, eval mode."""
    device = model_device(model, pixels.device)
    space = InputSpace.of(model, pixels.shape[1])
    out = []
    with frozen(model):
        for first in range(0, pixels.shape[0], batch_size):
            batch = pixels[first:first + batch_size].to(device).float()
            out.append(features_of(model(space.normalise(batch))).float().cpu())
    return torch.cat(out)


@contextlib.contextmanager
def nvtx_range(name: str, enabled: bool):
    """An NVTX range on CUDA (visible in Nsight Systems); nothing on CPU."""
    if enabled:
        torch.cuda.nvtx.range_push(name)
    try:
        yield
    finally:
        if enabled:
            torch.cuda.nvtx.range_pop()
