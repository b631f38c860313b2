"""A model is tried on one dummy batch at the run's input size before a run writes anything.

A model that cannot take the input size (a pooling layer left with nothing to pool), returns something other than
features [B, D], or gives no finite gradient to its input cannot be protected for; finding that out in the first
batch would leave a run record behind for a run that never started.
"""
from __future__ import annotations

import torch
from torch import nn

from ..engine import frozen
from ..feature_model import model_device
from .errors import GalleryError

PROBE_BATCH = 2  # two images: a model whose features mix the batch (train-mode BatchNorm) still runs


def check_model(model: nn.Module, size: tuple[int, int], what: str) -> None:
    """GalleryError naming ``what`` (e.g. the --model spec) when ``model`` cannot be protected for at ``size``."""
    device = model_device(model, torch.device("cpu"))
    height, width = size
    # A fixed ramp, not random numbers: the check draws nothing from torch's generator.
    probe = torch.linspace(-1, 1, PROBE_BATCH * 3 * height * width, device=device).reshape(PROBE_BATCH, 3, height,
                                                                                          width)
    probe.requires_grad_(True)
    try:
        with frozen(model), torch.enable_grad():
            features = model(probe)
            if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != PROBE_BATCH \
                    or features.shape[1] == 0:
                shape = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
                raise GalleryError(f"the model {what} returns {shape} for a batch of {PROBE_BATCH} images of "
                                   f"{height}x{width}; it must return features [B, D] (D > 0): pass a Re-ID "
                                   f"feature extractor as --model")
            if not features.requires_grad:
                raise GalleryError(f"the model {what} gives no gradient to its input; PixelFade needs a "
                                   f"differentiable model")
            (gradient,) = torch.autograd.grad(features.float().square().sum(), probe, allow_unused=True)
    except GalleryError:
        raise
    except Exception as error:  # whatever the model raises: the user chose the model or its input size
        raise GalleryError(f"the model {what} cannot run on {height}x{width} images ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}); check --model and --input-size H W"
                           ) from None
    if gradient is None or not bool(torch.isfinite(gradient).all()):
        raise GalleryError(f"the model {what} gives no finite gradient to its input at {height}x{width}; "
                           f"PixelFade needs a differentiable model")
