"""The authorised model as the engine sees it: features of a batch, the per-image loss, the input space."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


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


def per_image_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_i = mean_d (f(x^p)_{i,d} - f0_{i,d})^2, one value per image (never a batch mean)."""
    return (features.float() - target).square().mean(dim=1)


def normalisation(model: nn.Module, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) of the model's input space: its ``mean``/``std`` attributes, else identity."""
    mean = getattr(model, "mean", None)
    std = getattr(model, "std", None)
    if mean is None or std is None:
        return torch.zeros(channels, device=device), torch.ones(channels, device=device)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(-1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(-1)
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(f"the model's mean/std have {mean.numel()}/{std.numel()} entries, images have {channels} channels")
    return mean, std


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return fallback


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
    mean, std = (v.reshape(1, -1, 1, 1) for v in normalisation(model, pixels.shape[1], device))
    out = []
    with frozen(model):
        for first in range(0, pixels.shape[0], batch_size):
            batch = pixels[first:first + batch_size].to(device).float()
            out.append(features_of(model((batch - mean) / std)).float().cpu())
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
