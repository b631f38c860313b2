"""fade_noise: η_i[e] for every element of every image, materialised as float32 [B, C, H, W]."""
import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from ..op_checks import check_image_shape, check_keys
from .launch import Tiles, image_slices, require_device, require_image_numel
from .philox import load_streams, noise_at

TILES = Tiles(block=1024, num_warps=4)


@triton.jit
def fade_noise_kernel(keys_ptr, out_ptr, numel, first_image, BLOCK: tl.constexpr):
    """Program (tile, image): η at elements [tile*BLOCK, tile*BLOCK + BLOCK) of one image."""
    image = tl.program_id(1).to(tl.int64) + first_image
    index = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    noise_key, noise_counter, _, _ = load_streams(keys_ptr, image)
    tl.store(out_ptr + image * numel + index, noise_at(noise_key, noise_counter, index), mask=index < numel)


def launch_fade_noise(keys: torch.Tensor, out: torch.Tensor) -> None:
    """Fill contiguous ``out`` [B, C, H, W] from contiguous ``keys`` [B, 4]."""
    batch, numel = int(out.shape[0]), int(out[0].numel())
    for first, count in image_slices(batch):
        grid = (triton.cdiv(numel, TILES.block), count)
        wrap_triton(fade_noise_kernel)[grid](keys, out, numel, first, BLOCK=TILES.block, num_warps=TILES.num_warps)


@triton_op("pixelfade_triton::fade_noise", mutates_args=())
def fade_noise(keys: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """η as float32 [B, *shape] from the noise words ``keys[:, 0:2]`` (see pixelfade_fast.reference.fade_noise)."""
    check_keys(keys)
    shape = check_image_shape(shape)
    require_device(keys, "fade_noise")
    require_image_numel(shape[0] * shape[1] * shape[2], "fade_noise")
    out = torch.empty((keys.shape[0], *shape), dtype=torch.float32, device=keys.device)
    launch_fade_noise(keys.contiguous(), out)
    return out
