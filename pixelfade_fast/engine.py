"""The protection engine: ``protect(model, images, config)`` runs PixelFade over a set of images in batches.

The loop is lean (targets detached, weights frozen, gradient w.r.t. the input only) and never reads a device
value on the host: the losses, the schedule's decisions and the fused step all stay on the device, so a
result depends only on the image, its uid and the seed, not on the batch it ran in.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from . import _backend
from . import ops
from .config import FadeConfig
from .progress import ProgressArg, make_progress
from .reference.rng import derive_keys
from .schedules import Schedule

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
StepFn = Callable[..., None]
DEFAULT_BATCH = {"cuda": 128, "cpu": 16}


@dataclass
class ProtectResult:
    """Protected images in [0, 1] (same layout and device as the input), per-image final loss and ε flag."""

    images: torch.Tensor
    final_loss: torch.Tensor
    met_epsilon: torch.Tensor
    backend: str
    config: FadeConfig
    timings: dict = field(default_factory=dict)

    @property
    def met_rate(self) -> float:
        """Fraction of images whose final loss is below ε."""
        return float(self.met_epsilon.float().mean()) if self.met_epsilon.numel() else 0.0


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


@torch.no_grad()
def extract_features(model: nn.Module, pixels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Features [N, D] (float32, on the CPU) of pixel images in [0, 1], in the model's input space, eval mode."""
    device = next(model.parameters()).device
    mean, std = (v.reshape(1, -1, 1, 1) for v in normalisation(model, pixels.shape[1], device))
    out = []
    with frozen(model):
        for first in range(0, pixels.shape[0], batch_size):
            batch = pixels[first:first + batch_size].to(device).float()
            out.append(features_of(model((batch - mean) / std)).float().cpu())
    return torch.cat(out)


def per_image_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_i = mean_d (f(x^p)_{i,d} - f0_{i,d})^2, one value per image (never a batch mean)."""
    return (features.float() - target).square().mean(dim=1)


def normalisation(model: nn.Module, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) of the model's input space: a ReIDModel's, else identity (pixels as they are)."""
    mean = getattr(model, "mean", None)
    std = getattr(model, "std", None)
    if mean is None or std is None:
        return torch.zeros(channels, device=device), torch.ones(channels, device=device)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(-1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(-1)
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(f"the model's mean/std have {mean.numel()}/{std.numel()} entries, images have {channels} channels")
    return mean, std


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


class PixelQuantizer:
    """Rounds normalised images to the 8-bit grid in pixel space, in place."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean = mean.reshape(1, -1, 1, 1)
        self.std = std.reshape(1, -1, 1, 1)

    def __call__(self, xp: torch.Tensor) -> None:
        pixels = (xp * self.std + self.mean).clamp(0.0, 1.0)
        xp.copy_((torch.round(pixels * 255.0) / 255.0 - self.mean) / self.std)


def fade_loop(features: FeatureFn, x: torch.Tensor, target: torch.Tensor, keys: torch.Tensor, lo: torch.Tensor,
              hi: torch.Tensor, config: FadeConfig, step: StepFn,
              quantizer: PixelQuantizer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the PixelFade steps on one batch of normalised images ``x`` [B, C, H, W] with targets f0 [B, D].

    Returns (protected normalised images, per-image final loss). Nothing in here reads a device value on the
    host, so the whole loop could be captured in a CUDA graph.
    """
    on_cuda = x.device.type == "cuda"
    xp = x.detach().clone()
    mom = torch.zeros_like(xp)
    schedule = Schedule(config, x.shape[0], x.device)
    for t in range(config.total_steps):
        with nvtx_range("forward", on_cuda):
            leaf = xp.detach().requires_grad_(True)
            loss = per_image_loss(features(leaf), target)
        with nvtx_range("backward", on_cuda):
            (grad,) = torch.autograd.grad(loss.sum(), leaf)
        flags = schedule.flags(loss.detach(), t)
        with nvtx_range("fade_step", on_cuda), torch.no_grad():
            step(xp, mom, grad, flags.do_co, flags.do_pro, flags.beta, flags.mask_idx, keys, lo, hi,
                 config.alpha, config.num_masks, config.norm, config.pixel_masks)
            if quantizer is not None and schedule.phase(t) in ("final", "finish"):
                quantizer(xp)
    with torch.no_grad():
        final_loss = per_image_loss(features(xp), target)
    return xp, final_loss


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return fallback


def check_images(images: torch.Tensor, model: nn.Module) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a float tensor [N, 3, H, W] in [0, 1], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have rank 4 [N, 3, H, W], got shape {list(images.shape)}")
    if images.shape[1] != 3:
        raise ValueError(f"images must have 3 (RGB) channels in dim 1, got {images.shape[1]} "
                         f"(shape {list(images.shape)}); channels-last arrays need .permute(0, 3, 1, 2)")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}; divide uint8 images by 255")
    if images.shape[0] == 0:
        raise ValueError("images is empty: nothing to protect")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"images must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]; divide uint8 images "
                         f"by 255 and pass pixels, not normalised tensors")
    device = _model_device(model, images.device)
    if device != images.device:
        raise ValueError(f"model is on {device} but images are on {images.device}; move them to one device "
                         f"(e.g. images.to('{device}'))")
    size = getattr(model, "input_size", None)
    if size is not None and tuple(images.shape[2:]) != tuple(size):
        raise ValueError(f"images are {images.shape[2]}x{images.shape[3]} but the model expects "
                         f"{size[0]}x{size[1]} (H x W); resize them first (pixelfade_fast.data.load_image(size=...))")


def check_uids(uids: Sequence[int] | torch.Tensor | None, count: int) -> list[int]:
    if uids is None:
        return list(range(count))
    values = [int(u) for u in (uids.tolist() if isinstance(uids, torch.Tensor) else uids)]
    if len(values) != count:
        raise ValueError(f"uids has {len(values)} entries for {count} images; give one uid per image")
    if len(set(values)) != count:
        raise ValueError("uids must be unique: two images with one uid would share their noise")
    return values


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


def protect(model: nn.Module, images: torch.Tensor, config: FadeConfig | None = None, *,
            uids: Sequence[int] | torch.Tensor | None = None, seed: int | None = None, backend: str | None = "auto",
            batch_size: int | None = None, amp: bool | None = None, progress: ProgressArg = None) -> ProtectResult:
    """Protect ``images`` (float [N, 3, H, W] in [0, 1]) against recovery while ``model`` still matches them.

    model: a ``ReIDModel`` (its mean/std define the input space) or any module returning [B, D] features
        (pixels go in unchanged). It is put in eval mode with frozen weights for the call, then restored.
    uids: stable per-image integers (default 0..N-1); with the seed they fix each image's noise and masks.
    seed: the run's secret (default: os.urandom). Never stored in the result: whoever knows it knows η.
    backend: "auto", "reference", "triton" or "cpp" for the fused step (see pixelfade_fast.backends()).
    batch_size: images per batch (default 128 on CUDA, 16 on CPU); results do not depend on it.
    amp: bf16 autocast for the model's forward/backward (default off; fp32 master copy either way).
    progress: None (bar when stderr is a terminal), True, False, or a callable(done, total).
    """
    config = config or FadeConfig()
    if not isinstance(config, FadeConfig):
        raise TypeError(f"config must be a FadeConfig, got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_images(images, model)
    count, channels = images.shape[0], images.shape[1]
    uid_list = check_uids(uids, count)
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    device = images.device
    batch_size = int(batch_size or DEFAULT_BATCH.get(device.type, 16))
    backend_name = _backend.resolve(backend, device)
    seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed)
    keys = derive_keys(seed, uid_list).to(device)
    mean, std = normalisation(model, channels, device)
    quantizer = PixelQuantizer(mean, std) if config.quantize else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(amp))

    protected = torch.empty(images.shape, dtype=torch.float32, device=device)
    final_loss = torch.empty(count, dtype=torch.float32, device=device)
    report = make_progress(progress, count, "protect")
    start = time.perf_counter()
    with frozen(model):
        def features(x: torch.Tensor) -> torch.Tensor:
            with autocast:
                out = features_of(model(x))
            if config.feature_norm:
                out = torch.nn.functional.normalize(out.float(), dim=1)
            return out

        for first in range(0, count, batch_size):
            last = min(first + batch_size, count)
            x = (images[first:last].float() - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)
            with torch.no_grad():
                target = features(x).float()
            _check_features(target, last - first)
            if config.clamp == "pixel":
                lo, hi = -mean / std, (1.0 - mean) / std
            else:
                lo, hi = x.min().expand(channels).float(), x.max().expand(channels).float()
            batch_keys = keys[first:last]
            # The mask ids once per batch: a PRO step then reads a byte per element instead of drawing Philox.
            mask_ids = ops.fade_mask_ids(batch_keys, x.shape[1:], config.num_masks, config.pixel_masks,
                                         backend=backend_name)
            step = functools.partial(ops.fade_step_, mask_ids=mask_ids, backend=backend_name)
            xp, loss = fade_loop(features, x, target.detach(), batch_keys, lo.contiguous(), hi.contiguous(),
                                 config, step, quantizer)
            pixels = (xp * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1)).clamp_(0.0, 1.0)
            protected[first:last] = pixels
            final_loss[first:last] = loss
            report(last, count)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    timings = {"total_s": elapsed, "per_image_s": elapsed / count, "images_per_s": count / elapsed,
               "steps": config.total_steps, "batch_size": batch_size}
    return ProtectResult(protected.to(images.dtype), final_loss, final_loss < config.epsilon, backend_name,
                         config, timings)


def _check_features(features: torch.Tensor, batch: int) -> None:
    if features.dim() != 2 or features.shape[0] != batch:
        raise ValueError(f"the model must return features of shape [B, D] = [{batch}, D], got {list(features.shape)}")
