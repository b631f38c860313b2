"""Privacy metrics: PSNR and SSIM of two image sets, and the Anderson–Darling normality statistic.

All three are per image and batched in torch, so they run on the GPU next to the attack. PSNR and SSIM take
pixels in [0, 1] (data range 1); AD takes the values in the model's normalised space, where PixelFade's target
noise is N(0, 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..input_space import InputSpace

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PSNR_MAX_DB = 100.0
AD_CHUNK_ELEMENTS = 1 << 24  # float64 values sorted at once by anderson_darling (128 MiB)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a float tensor [N, C, H, W] of pixels in [0, 1], got "
                            f"{type(value).__name__ if not isinstance(value, torch.Tensor) else value.dtype}")
        if value.dim() != 4:
            raise ValueError(f"{name} must have rank 4 [N, C, H, W], got shape {list(value.shape)}; "
                             f"use x.unsqueeze(0) for a single image")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")


def _compute_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    """float64 if either input is float64, else float32 (half inputs are promoted)."""
    return torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32


def psnr(a: torch.Tensor, b: torch.Tensor, max_db: float = PSNR_MAX_DB) -> torch.Tensor:
    """Per-image PSNR in dB of pixel images a, b [N, C, H, W] in [0, 1]: 10·log10(1 / MSE_i).

    Identical images have MSE 0 and an infinite PSNR; it is capped at ``max_db`` (the MSE is floored at
    10^(-max_db/10)) so that means over a set stay finite. Returns float [N] on the inputs' device.
    """
    _check_pair(a, b)
    dtype = _compute_dtype(a, b)
    mse = (a.to(dtype) - b.to(dtype)).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(10.0 ** (-max_db / 10.0)))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """1-D Gaussian weights [size] centred on the middle tap, summing to 1."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    weights = torch.exp(-offsets.square() / (2.0 * sigma * sigma))
    return weights / weights.sum()


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel, 'valid' (no padding): output is (H-10) x (W-10) for size 11."""
    channels = x.shape[1]
    size = window.numel()
    rows = window.reshape(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = window.reshape(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of pixel images a, b [N, C, H, W] in [0, 1], data range 1.

    Local statistics use a Gaussian window (11 taps, σ 1.5) with *valid* padding: the SSIM map covers only the
    positions where the whole window lies inside the image (as in Wang et al.'s reference code), so H and W
    must be at least ``window``. K1 = 0.01, K2 = 0.03. The map is averaged per channel, then over channels
    (all channels have the same map size, so this is the mean over the whole map). Returns float [N].
    """
    _check_pair(a, b)
    height, width = a.shape[2], a.shape[3]
    if height < window or width < window:
        raise ValueError(f"SSIM with an {window}-tap window needs images of at least {window}x{window} pixels, "
                         f"got {height}x{width}; pass a smaller window or larger images")
    dtype = _compute_dtype(a, b)
    a = a.to(dtype)
    b = b.to(dtype)
    kernel = gaussian_window(window, sigma, dtype=dtype, device=a.device)
    c1 = SSIM_K1 ** 2
    c2 = SSIM_K2 ** 2
    mu_a = _filter_valid(a, kernel)
    mu_b = _filter_valid(b, kernel)
    var_a = _filter_valid(a * a, kernel) - mu_a.square()
    var_b = _filter_valid(b * b, kernel) - mu_b.square()
    cov = _filter_valid(a * b, kernel) - mu_a * mu_b
    numerator = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    denominator = (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)


def to_normalised(pixels: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Pixels [N, C, H, W] in [0, 1] in the model's input space (x - mean_c) / std_c (identity for plain modules)."""
    return InputSpace.of(model, pixels.shape[1]).normalise(pixels)


def anderson_darling(x: torch.Tensor) -> torch.Tensor:
    """Per-image Anderson–Darling A² of the image's values against a normal with the fitted mean and std.

    x: [N, ...] (e.g. protected images in normalised space); each image's n = x[i].numel() values form one
    sample (the report states n, since A² grows with n for a non-normal sample). Same statistic as
    ``scipy.stats.anderson(values, 'norm').statistic``: mean and std (ddof=1) are fitted, w = sorted standardised
    values, A² = -n - Σ_i (2i-1)/n · (log Φ(w_i) + log(1 - Φ(w_{n+1-i}))). Computed in float64 on x's device.
    An image with constant values has no fitted std: its A² is NaN. Returns float64 [N].
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float tensor [N, ...] of images, got "
                        f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    if x.dim() < 2 or x[0].numel() < 2:
        raise ValueError(f"x must be [N, ...] with at least 2 values per image, got shape {list(x.shape)}")
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[1]
    weights = (2.0 * torch.arange(1, n + 1, dtype=torch.float64, device=x.device) - 1.0) / n
    chunk = max(1, AD_CHUNK_ELEMENTS // n)
    parts = []
    for first in range(0, flat.shape[0], chunk):
        values = torch.sort(flat[first:first + chunk].to(torch.float64), dim=1).values
        mean = values.mean(dim=1, keepdim=True)
        std = values.std(dim=1, correction=1, keepdim=True)
        w = (values - mean) / std
        log_cdf = torch.special.log_ndtr(w)
        log_sf = torch.special.log_ndtr(-w)
        parts.append(-n - (weights * (log_cdf + log_sf.flip(dims=[1]))).sum(dim=1))
    return torch.cat(parts)


def anderson_darling_summary(x: torch.Tensor) -> dict:
    """Mean A² over images, the per-image values (numpy) and the sample size n (values per image)."""
    values = anderson_darling(x)
    return {"mean": float(values.mean()), "per_image": values.cpu().numpy(), "sample_size": int(x[0].numel())}

