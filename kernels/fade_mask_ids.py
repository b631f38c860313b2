"""fade_mask_ids: the PRO mask id of every element of every image, materialised as uint8 [B, C, H, W]."""
import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from ..op_checks import check_image_shape, check_keys
from .launch import Tiles, image_slices, require_device, require_image_numel
from .philox import load_streams, mask_id_at

TILES = Tiles(block=1024, num_warps=4)


@triton.jit
def fade_mask_ids_kernel(keys_ptr, out_ptr, pixels, num_masks, first_image, CHANNELS: tl.constexpr,
                         PIXEL_MASKS: tl.constexpr, BLOCK: tl.constexpr):
    """Program (pixel tile, image): ids of pixels [tile*BLOCK, tile*BLOCK + BLOCK) in every channel.

    With PIXEL_MASKS the id is drawn once per pixel (index h*W + w) and written to all channels.
    """
    image = tl.program_id(1).to(tl.int64) + first_image
    pixel = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = pixel < pixels
    _, _, mask_key, mask_counter = load_streams(keys_ptr, image)
    image_out = out_ptr + image * CHANNELS * pixels
    if PIXEL_MASKS:
        ids = mask_id_at(mask_key, mask_counter, pixel, num_masks).to(tl.uint8)
        for channel in tl.static_range(CHANNELS):
            tl.store(image_out + channel * pixels + pixel, ids, mask=inside)
    else:
        for channel in tl.static_range(CHANNELS):
            element = channel * pixels + pixel
            tl.store(image_out + element, mask_id_at(mask_key, mask_counter, element, num_masks).to(tl.uint8),
                     mask=inside)


def launch_fade_mask_ids(keys: torch.Tensor, out: torch.Tensor, num_masks: int, pixel_masks: bool) -> None:
    """Fill contiguous uint8 ``out`` [B, C, H, W] from contiguous ``keys`` [B, 4]."""
    batch, channels, height, width = (int(size) for size in out.shape)  # CHANNELS is compile-time
    pixels = height * width
    for first, count in image_slices(batch):
        grid = (triton.cdiv(pixels, TILES.block), count)
        wrap_triton(fade_mask_ids_kernel)[grid](keys, out, pixels, num_masks, first, CHANNELS=channels,
                                                PIXEL_MASKS=pixel_masks, BLOCK=TILES.block,
                                                num_warps=TILES.num_warps)


@triton_op("pixelfade_triton::fade_mask_ids", mutates_args=())
def fade_mask_ids(keys: torch.Tensor, shape: list[int], num_masks: int, pixel_masks: bool) -> torch.Tensor:
    """Mask ids as uint8 [B, *shape] from the mask words ``keys[:, 2:4]`` (see pixelfade_fast.reference)."""
    check_keys(keys)
    shape = check_image_shape(shape)
    if not 1 <= num_masks <= 255:
        raise ValueError(f"num_masks must be in [1, 255], got {num_masks}")
    require_device(keys, "fade_mask_ids")
    require_image_numel(shape[0] * shape[1] * shape[2], "fade_mask_ids")
    out = torch.empty((keys.shape[0], *shape), dtype=torch.uint8, device=keys.device)
    launch_fade_mask_ids(keys.contiguous(), out, num_masks, pixel_masks)
    return out
