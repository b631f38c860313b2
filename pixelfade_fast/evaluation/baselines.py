"""Protection methods PixelFade is compared with (paper Sec. 4.1.4, Table 2).

Every method takes pixel images float [N, 3, H, W] in [0, 1] and returns protected pixels in [0, 1] of the same
shape. ``methods.py`` registers them (and the PixelFade ablations of ``ablations.py``) for the suite.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FadeConfig
from ..engine import BatchSetup, Protector, check_images, per_image_loss, protect
from ..progress import ProgressArg
from ..reference.rng import derive_keys

AVIH_LR = 0.01
AVIH_TV_WEIGHT = 0.5
BLUR_TRUNCATE = 3.0  # kernel half-width in standard deviations


def _check_pixels(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise TypeError(f"images must be a float tensor [N, C, H, W] of pixels in [0, 1], got "
                        f"{list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def mosaic(images: torch.Tensor, block: int = 24) -> torch.Tensor:
    """Pixelation: every block x block tile (anchored at the top-left corner) takes its mean colour.

    Tiles at the bottom/right edges are smaller when H or W is not a multiple of ``block``; they are averaged
    over their own pixels only. The paper's setting is block 24 (after PrivacyReID).
    """
    _check_pixels(images)
    _check_positive_int("block", block)
    height, width = images.shape[2], images.shape[3]
    pad = (0, (-width) % block, 0, (-height) % block)
    sums = F.avg_pool2d(F.pad(images.float(), pad), block, divisor_override=1)
    ones = torch.ones(1, 1, height, width, dtype=torch.float32, device=images.device)
    counts = F.avg_pool2d(F.pad(ones, pad), block, divisor_override=1)
    means = sums / counts
    tiled = means.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)
    return tiled[:, :, :height, :width].to(images.dtype)


def _reflect_index(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of each of the size + 2*pad positions under mirror padding (edge not repeated), extended
    periodically so that ``pad`` may exceed the image (a 73-tap kernel on a 32-pixel-wide image)."""
    index = torch.arange(-pad, size + pad, device=device)
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def _blur_matrix(size: int, radius: float, device: torch.device) -> torch.Tensor:
    """The 1-D blur along one axis as a [size, size] matrix: row ``out`` holds the kernel's weights, each added
    to the source pixel that the mirror padding maps its tap to."""
    half = int(math.ceil(BLUR_TRUNCATE * radius))
    offsets = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
    kernel = torch.exp(-offsets.square() / (2.0 * radius * radius))
    kernel = kernel / kernel.sum()
    sources = _reflect_index(size, half, device).unfold(0, 2 * half + 1, 1)  # [size, taps]
    matrix = torch.zeros(size, size, dtype=torch.float64, device=device)
    return matrix.scatter_add_(1, sources, kernel.expand(size, -1)).float()


def gaussian_blur(images: torch.Tensor, radius: float = 12.0) -> torch.Tensor:
    """Gaussian blur with standard deviation σ = ``radius`` pixels (the meaning of PIL's GaussianBlur radius).

    Separable 1-D kernels of 2·ceil(3σ)+1 taps, normalised to sum 1, with reflect padding (mirrored without
    repeating the edge, repeated as often as the kernel needs). The paper's setting is radius 12. Each axis is
    one matrix product with the padding folded into the matrix (``_blur_matrix``), cheaper on the CPU than a
    73-tap convolution, which matters to the attacker that blurs every training batch afresh.
    """
    _check_pixels(images)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0 or math.isinf(radius):
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
    rows = _blur_matrix(images.shape[2], radius, images.device)
    cols = _blur_matrix(images.shape[3], radius, images.device)
    x = torch.matmul(torch.matmul(rows, images.float()), cols.t())
    return x.clamp(0.0, 1.0).to(images.dtype)


def total_variation(pixels: torch.Tensor) -> torch.Tensor:
    """Per-image smoothness penalty: mean squared difference between vertical and horizontal neighbours."""
    vertical = (pixels[:, :, 1:, :] - pixels[:, :, :-1, :]).square().flatten(1).mean(dim=1)
    horizontal = (pixels[:, :, :, 1:] - pixels[:, :, :, :-1]).square().flatten(1).mean(dim=1)
    return vertical + horizontal


def avih(model: nn.Module, images: torch.Tensor, steps: int = 100, *, lr: float = AVIH_LR,
         tv_weight: float = AVIH_TV_WEIGHT, seed: int = 0, batch_size: int | None = None) -> torch.Tensor:
    """AVIH-style obfuscation: from uniform noise, match the original's features with a smoothness term.

    Per image, minimise L_i(p) + tv_weight · TV_i(p) over pixels p ∈ [0, 1] with Adam (lr, default betas),
    starting from uniform noise (seeded on the CPU, so the start is the same on any device) and clamping to
    [0, 1] after each step. L_i is engine.per_image_loss in the model's normalised space, TV is
    ``total_variation``. No pixel is ever replaced: the image only drifts as far as the features pull it.
    Adam acts per element, so an image's result does not depend on its batch. 100 steps as in the paper.
    """
    check_images(images, model)
    _check_positive_int("steps", steps)
    if not lr > 0 or not tv_weight >= 0:
        raise ValueError(f"lr must be > 0 and tv_weight >= 0, got lr={lr!r}, tv_weight={tv_weight!r}")
    start = torch.rand(images.shape, generator=torch.Generator().manual_seed(seed)).to(images.device)
    keys = derive_keys(seed, range(images.shape[0]))  # the driver's set-up draws masks from them; Adam never uses them

    def adam(rows: slice, setup: BatchSetup) -> tuple[torch.Tensor, torch.Tensor]:
        prepared = protector.prepared(setup.x)
        pixels = start[rows].clone().requires_grad_(True)
        optimiser = torch.optim.Adam([pixels], lr=lr)
        for _ in range(steps):
            loss = per_image_loss(prepared.loop_features(protector.space.normalise(pixels)), setup.target)
            objective = (loss + tv_weight * total_variation(pixels)).sum()
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            optimiser.step()
            with torch.no_grad():
                pixels.clamp_(0.0, 1.0)
        with torch.no_grad():
            final_loss = per_image_loss(prepared.exact_features(protector.space.normalise(pixels)), setup.target)
        return pixels.detach(), final_loss

    with Protector(model, FadeConfig(), backend="reference") as protector:  # its set-up; the loop is Adam's
        protected = protector.protect_all(images, keys, batch_size, run_batch=adam).pixels
    return protected.to(images.dtype)


def pixelfade(model: nn.Module, images: torch.Tensor, config: FadeConfig | None = None, schedule: str | None = None,
              *, seed: int = 0, uids: Sequence[int] | None = None, backend: str = "auto",
              batch_size: int | None = None, progress: ProgressArg = False) -> torch.Tensor:
    """PixelFade through engine.protect; ``schedule`` ("paper" / "released") overrides the config's."""
    config = config or FadeConfig()
    if schedule is not None:
        config = dataclasses.replace(config, schedule=schedule)
    return protect(model, images, config, uids=uids, seed=seed, backend=backend, batch_size=batch_size,
                   progress=progress).images
