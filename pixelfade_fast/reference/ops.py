"""The PixelFade ops in plain PyTorch: the specification every fast backend must match.

Kept deliberately simple (materialise η and the mask ids, then a few whole-tensor ops); the fused kernels do
the same in one pass over memory.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..op_checks import NORMS
from .rng import MASK_COUNTER, MASK_KEY, NOISE_COUNTER, NOISE_KEY, mask_id_from_word, normal_from_words, philox4x32

NORM_FLOOR = 1e-12


def _element_index(shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """Flat element index e = c*H*W + h*W + w of an image of ``shape`` (C, H, W), as int64 [C, H, W]."""
    count = 1
    for size in shape:
        count *= int(size)
    return torch.arange(count, dtype=torch.int64, device=device).reshape(tuple(shape))


def _per_image(keys: torch.Tensor, column: int, dims: int) -> torch.Tensor:
    """One key word of every image, shaped [B, 1, ...] to broadcast over an image of ``dims`` dimensions."""
    return keys[:, column].reshape(-1, *([1] * dims))


def fade_noise(keys: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """η as float32 [B, *shape]: η_i[e] = Box-Muller of words (r0, r1) of Philox with key keys[i, 0] and
    counter (e, keys[i, 1])."""
    index = _element_index(shape, keys.device)
    r0, r1, _, _ = philox4x32(_per_image(keys, NOISE_KEY, len(shape)), index,
                              _per_image(keys, NOISE_COUNTER, len(shape)))
    return normal_from_words(r0, r1)


def fade_mask_ids(keys: torch.Tensor, shape: Sequence[int], num_masks: int, pixel_masks: bool) -> torch.Tensor:
    """Mask ids as uint8 [B, *shape]: min(I-1, floor(u(r0) * I)) with r0 the first word of Philox with key
    keys[i, 2] and counter (idx, keys[i, 3]).

    idx is the element index, or with ``pixel_masks`` the spatial index h*W + w shared by all channels.
    """
    if pixel_masks:
        index = _element_index(shape[1:], keys.device).unsqueeze(0)
    else:
        index = _element_index(shape, keys.device)
    r0, _, _, _ = philox4x32(_per_image(keys, MASK_KEY, len(shape)), index,
                             _per_image(keys, MASK_COUNTER, len(shape)))
    ids = mask_id_from_word(r0, num_masks)
    return ids.expand(keys.shape[0], *shape).contiguous()


def fade_step_(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor,
               do_pro: torch.Tensor, beta: torch.Tensor, mask_idx: torch.Tensor, keys: torch.Tensor,
               lo: torch.Tensor, hi: torch.Tensor, alpha: float, num_masks: int, norm: str,
               pixel_masks: bool, mask_ids: torch.Tensor | None = None) -> None:
    """One PixelFade step in place on ``xp`` and ``mom`` ([B, C, H, W]); per-image flags are [B] tensors.

    ``mask_ids`` (uint8, xp's shape) are the ids ``fade_mask_ids(keys, xp.shape[1:], num_masks, pixel_masks)``
    materialised once per batch; without them the step draws the ids from the keys (the same values).

    For each image i, in this order:
      CO  (if do_co[i]):  n = mean|G_i| (l1mean) or sum G_i^2 (l2sq), n = max(n, 1e-12);
                          mom_i = alpha * mom_i + G_i / n;  xp_i = xp_i - beta[i] * mom_i
      PRO (if do_pro[i]): xp_i[e] = η_i[e] wherever mask_id_i[e] == mask_idx[i]
      clamp:              xp_i[c] = clamp(xp_i[c], lo[c], hi[c])   (every image, every step)
    """
    new_mom, stepped = constraint_step(xp, mom, grad, do_co, beta, alpha, norm)
    mom.copy_(new_mom)

    per_image = (xp.shape[0],) + (1,) * (xp.dim() - 1)
    noise = fade_noise(keys, xp.shape[1:]).to(xp.dtype)
    if mask_ids is None:
        mask_ids = fade_mask_ids(keys, xp.shape[1:], num_masks, pixel_masks)
    replace = do_pro.reshape(per_image) & (mask_ids.to(torch.int32) == mask_idx.to(torch.int32).reshape(per_image))
    replaced = torch.where(replace, noise, stepped)
    xp.copy_(clamp_channels(replaced, lo, hi))


def constraint_step(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor,
                    beta: torch.Tensor, alpha: float, norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CO: the new momentum and the stepped images, (mom_i, xp_i) unchanged where not do_co[i]:
    n = mean|G_i| (l1mean) or sum G_i^2 (l2sq), n = max(n, 1e-12); mom_i = alpha * mom_i + G_i / n;
    xp_i = xp_i - beta[i] * mom_i (the ablations reuse it with their own replacement)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    batch = xp.shape[0]
    per_image = (batch,) + (1,) * (xp.dim() - 1)
    flat_grad = grad.reshape(batch, -1)
    if norm == "l1mean":
        normaliser = flat_grad.abs().mean(dim=1)
    else:
        normaliser = flat_grad.square().sum(dim=1)
    normaliser = normaliser.clamp_min(NORM_FLOOR).reshape(per_image)

    co = do_co.reshape(per_image)
    new_mom = torch.where(co, alpha * mom + grad / normaliser, mom)
    stepped = torch.where(co, xp - beta.to(xp.dtype).reshape(per_image) * new_mom, xp)
    return new_mom, stepped


def clamp_channels(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """x[:, c] clamped to [lo[c], hi[c]]."""
    channel = (1, -1) + (1,) * (x.dim() - 2)
    return torch.maximum(torch.minimum(x, hi.to(x.dtype).reshape(channel)), lo.to(x.dtype).reshape(channel))
