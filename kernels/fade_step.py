"""fade_step_: one PixelFade step (CO, then PRO, then clamp) in place on xp and mom.

Two launches per batch. Pass 1 (``grad_norm_partials_kernel``) writes, for every image with do_co set,
R partial sums of |G| (l1mean) or G² (l2sq) to a [B, R] workspace; partial r always sums the same tiles
(r, r + R, r + 2R, ...) in the same order. Pass 2 (``fade_step_kernel``) lets every program of an image
reduce that image's R partials itself, in one fixed order, so n_i has the same bits in every program and
every run without atomics or a third launch. Pass 2 re-reads grad: it takes the images in reverse order and
loads/stores everything else evict-first, so the gradients pass 1 read last are re-read from L2. Each program
branches once per image flag: images without CO never read grad or mom, images without PRO never evaluate
Philox. η is computed from the keys in registers (DESIGN.md, "Noise and masks"); the mask ids too, unless the
caller passes them materialised (``mask_ids``, one byte per element read instead of a Philox word drawn).
"""
from typing import Optional

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from ..op_checks import check_step_args
from .launch import image_slices, require_device, require_image_numel
from .philox import load_streams, mask_id_at, noise_at


@dataclass(frozen=True)
class StepTiles:
    block: int  # pixels per program of the update pass; a program covers them in every channel
    num_warps: int
    norm_block: int  # gradient elements per tile of the reduction pass
    norm_warps: int
    max_partials: int  # partial sums per image: more tiles are dealt round-robin to this many programs


# Chosen on an H100 and an H200 (triton 3.6, B=64 3x256x128): 512/4 had the best or tied median of the
# update tiles tried (256..2048 pixels, 2..8 warps); the eager differences were within noise.
TILES = StepTiles(block=512, num_warps=4, norm_block=2048, norm_warps=8, max_partials=512)

NORM_FLOOR = tl.constexpr(1e-12)


@triton.jit
def ieee_div(numerator, denominator):
    """Correctly rounded division (Triton's fp32 ``/`` may be approximate; fp64 ``/`` is IEEE)."""
    if tl.constexpr(numerator.dtype == tl.float32):
        return tl.div_rn(numerator, denominator)
    else:
        return numerator / denominator


@triton.jit
def grad_norm_partials_kernel(grad_ptr, do_co_ptr, partials_ptr, numel, num_partials, first_image,
                              SQUARED: tl.constexpr, BLOCK: tl.constexpr, TILES_PER_PARTIAL: tl.constexpr):
    """Program (r, image): partials[image, r] = sum of |G| (or G²) over tiles r, r + R, ... of the image."""
    part = tl.program_id(0)
    image = tl.program_id(1).to(tl.int64) + first_image
    if tl.load(do_co_ptr + image):
        image_grad = grad_ptr + image * numel
        total = tl.zeros([BLOCK], dtype=grad_ptr.dtype.element_ty)
        for step in range(TILES_PER_PARTIAL):  # a compile-time trip count (1 for gallery-sized images)
            index = (part + step * num_partials) * BLOCK + tl.arange(0, BLOCK)
            # evict_last: the update pass re-reads these; what stays in L2 is not read from memory twice
            grad = tl.load(image_grad + index, mask=index < numel, other=0.0, eviction_policy="evict_last")
            if SQUARED:
                total += grad * grad
            else:
                total += tl.abs(grad)
        tl.store(partials_ptr + image * num_partials + part, tl.sum(total, axis=0))


@triton.jit
def fade_step_kernel(xp_ptr, mom_ptr, grad_ptr, partials_ptr, do_co_ptr, do_pro_ptr, beta_ptr, mask_idx_ptr,
                     keys_ptr, mask_ids_ptr, lo_ptr, hi_ptr, alpha: "fp64", num_masks, pixels, num_partials,
                     first_image, CHANNELS: tl.constexpr, SQUARED: tl.constexpr, PIXEL_MASKS: tl.constexpr,
                     HAS_MASK_IDS: tl.constexpr, BLOCK: tl.constexpr, PARTIALS_BLOCK: tl.constexpr):
    """Program (pixel tile, image): the step for pixels [tile*BLOCK, tile*BLOCK + BLOCK) in every channel.

    ``alpha`` is annotated fp64 so float64 images get it unrounded (a float argument is fp32 otherwise);
    this module must not use ``from __future__ import annotations``, which would hide that annotation.
    """
    # Images in the reverse of the norm pass's order: the gradients it read last are the ones still in L2.
    image = (tl.num_programs(1) - 1 - tl.program_id(1)).to(tl.int64) + first_image
    pixel = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = pixel < pixels
    numel = CHANNELS * pixels
    image_start = image * numel
    dtype = xp_ptr.dtype.element_ty
    do_co = tl.load(do_co_ptr + image)
    do_pro = tl.load(do_pro_ptr + image)

    momentum = tl.full((), alpha, dtype)
    normaliser = tl.full((), 1.0, dtype)
    step_size = tl.full((), 0.0, dtype)
    if do_co:
        parts = tl.arange(0, PARTIALS_BLOCK)
        partial = tl.load(partials_ptr + image * num_partials + parts, mask=parts < num_partials, other=0.0)
        total = tl.sum(partial, axis=0)
        if not SQUARED:
            total = ieee_div(total, tl.cast(numel, dtype))
        normaliser = tl.maximum(total, tl.full((), NORM_FLOOR, dtype), propagate_nan=tl.PropagateNan.ALL)
        step_size = tl.load(beta_ptr + image).to(dtype)

    mask_idx = tl.load(mask_idx_ptr + image)
    noise_key, noise_counter, mask_key, mask_counter = load_streams(keys_ptr, image)
    if PIXEL_MASKS and not HAS_MASK_IDS:  # one id per pixel, shared by its channels: draw it once
        pixel_ids = tl.zeros([BLOCK], dtype=tl.int32)
        if do_pro:
            pixel_ids = mask_id_at(mask_key, mask_counter, pixel, num_masks)

    for channel in tl.static_range(CHANNELS):
        element = channel * pixels + pixel
        offset = image_start + element
        # Last uses: evict-first, so the gradients still waiting for this pass stay in L2 longer.
        x = tl.load(xp_ptr + offset, mask=inside, eviction_policy="evict_first")
        if do_co:
            grad = tl.load(grad_ptr + offset, mask=inside, eviction_policy="evict_first")
            mom = momentum * tl.load(mom_ptr + offset, mask=inside, eviction_policy="evict_first") + ieee_div(
                grad, normaliser)
            tl.store(mom_ptr + offset, mom, mask=inside, eviction_policy="evict_first")
            x = x - step_size * mom
        if do_pro:
            if HAS_MASK_IDS:
                ids = tl.load(mask_ids_ptr + offset, mask=inside).to(tl.int32)
            elif PIXEL_MASKS:
                ids = pixel_ids
            else:
                ids = mask_id_at(mask_key, mask_counter, element, num_masks)
            x = tl.where(ids == mask_idx, noise_at(noise_key, noise_counter, element).to(dtype), x)
        lo = tl.load(lo_ptr + channel).to(dtype)
        hi = tl.load(hi_ptr + channel).to(dtype)
        x = tl.maximum(tl.minimum(x, hi, propagate_nan=tl.PropagateNan.ALL), lo, propagate_nan=tl.PropagateNan.ALL)
        tl.store(xp_ptr + offset, x, mask=inside, eviction_policy="evict_first")


def launch_fade_step(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor,
                     do_pro: torch.Tensor, beta: torch.Tensor, mask_idx: torch.Tensor, keys: torch.Tensor,
                     lo: torch.Tensor, hi: torch.Tensor, alpha: float, num_masks: int, norm: str,
                     pixel_masks: bool, mask_ids: Optional[torch.Tensor]) -> None:
    """Run both passes on contiguous arguments (already checked)."""
    batch, channels, height, width = (int(size) for size in xp.shape)  # concrete: they pick compile-time tiles
    pixels = height * width
    numel = channels * pixels
    num_tiles = triton.cdiv(numel, TILES.norm_block)
    num_partials = min(num_tiles, TILES.max_partials)
    partials = torch.empty((batch, num_partials), dtype=xp.dtype, device=xp.device)
    squared = norm == "l2sq"
    for first, count in image_slices(batch):
        wrap_triton(grad_norm_partials_kernel)[(num_partials, count)](
            grad, do_co, partials, numel, num_partials, first,
            SQUARED=squared, BLOCK=TILES.norm_block, TILES_PER_PARTIAL=triton.cdiv(num_tiles, num_partials),
            num_warps=TILES.norm_warps)
        wrap_triton(fade_step_kernel)[(triton.cdiv(pixels, TILES.block), count)](
            xp, mom, grad, partials, do_co, do_pro, beta, mask_idx, keys,
            keys if mask_ids is None else mask_ids,  # any pointer when absent: HAS_MASK_IDS=False never reads it
            lo, hi, alpha, num_masks, pixels, num_partials, first, CHANNELS=channels,
            SQUARED=squared, PIXEL_MASKS=pixel_masks, HAS_MASK_IDS=mask_ids is not None, BLOCK=TILES.block,
            PARTIALS_BLOCK=triton.next_power_of_2(num_partials), num_warps=TILES.num_warps)


@triton_op("pixelfade_triton::fade_step_", mutates_args=("xp", "mom"))
def fade_step_(xp: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor, do_co: torch.Tensor,
               do_pro: torch.Tensor, beta: torch.Tensor, mask_idx: torch.Tensor, keys: torch.Tensor,
               lo: torch.Tensor, hi: torch.Tensor, alpha: float, num_masks: int, norm: str,
               pixel_masks: bool, mask_ids: Optional[torch.Tensor] = None) -> None:
    """One PixelFade step in place on ``xp`` and ``mom`` (see pixelfade_fast.reference.fade_step_).

    Non-contiguous inputs are read through contiguous copies; non-contiguous xp / mom are updated on
    contiguous copies that are copied back.
    """
    check_step_args(xp, mom, grad, do_co, do_pro, beta, mask_idx, keys, lo, hi, alpha, num_masks, norm, pixel_masks,
                    mask_ids)
    require_device(xp, "fade_step_")
    require_image_numel(math.prod(xp.shape[1:]), "fade_step_")
    xp_work = xp.contiguous()
    mom_work = mom.contiguous()
    launch_fade_step(xp_work, mom_work, grad.contiguous(), do_co.contiguous(), do_pro.contiguous(),
                     beta.contiguous(), mask_idx.contiguous(), keys.contiguous(), lo.contiguous(),
                     hi.contiguous(), alpha, num_masks, norm, pixel_masks,
                     None if mask_ids is None else mask_ids.contiguous())
    if xp_work is not xp:
        xp.copy_(xp_work)
    if mom_work is not mom:
        mom.copy_(mom_work)
