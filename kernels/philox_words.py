"""philox_words: raw Philox4x32-10 words for (key, counter) pairs, for bit-exact cross-backend tests."""
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .launch import Tiles, require_device
from .philox import philox_words as philox_device_words

TILES = Tiles(block=256, num_warps=4)


@triton.jit
def philox_words_kernel(key_ptr, index_ptr, high_ptr, out_ptr, count, BLOCK: tl.constexpr):
    """Program i: rows [i*BLOCK, i*BLOCK + BLOCK); each row's four words as int64 in [0, 2**32)."""
    row = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = row < count
    keys = tl.load(key_ptr + row, mask=inside, other=0)
    index = tl.load(index_ptr + row, mask=inside, other=0)
    high = tl.load(high_ptr + row, mask=inside, other=0)
    r0, r1, r2, r3 = philox_device_words(keys, high, index)
    out_row = out_ptr + row * 4
    tl.store(out_row, r0.to(tl.int64), mask=inside)
    tl.store(out_row + 1, r1.to(tl.int64), mask=inside)
    tl.store(out_row + 2, r2.to(tl.int64), mask=inside)
    tl.store(out_row + 3, r3.to(tl.int64), mask=inside)


def _check(name: str, tensor: torch.Tensor) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.int64 or tensor.dim() != 1:
        got = f"{tensor.dtype} {list(tensor.shape)}" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a 1-D int64 tensor, got {got}")


@triton_op("pixelfade_triton::philox_words", mutates_args=())
def philox_words(key: torch.Tensor, index: torch.Tensor, counter_high: Optional[torch.Tensor] = None) -> torch.Tensor:
    """int64 [n, 4]: Philox4x32-10 words of key[j] and counter (index[j], counter_high[j]); every argument holds
    uint64 bits; counter_high defaults to 0."""
    high = torch.zeros_like(key) if counter_high is None else counter_high
    for name, tensor in (("key", key), ("index", index), ("counter_high", high)):
        _check(name, tensor)
        if tensor.shape != key.shape or tensor.device != key.device:
            raise ValueError(f"key, index and counter_high must have one shape and device, got {name} "
                             f"{list(tensor.shape)} on {tensor.device} and key {list(key.shape)} on {key.device}")
    require_device(key, "philox_words")
    out = torch.empty((key.shape[0], 4), dtype=torch.int64, device=key.device)
    count = int(key.shape[0])
    if count:
        grid = (triton.cdiv(count, TILES.block),)
        wrap_triton(philox_words_kernel)[grid](key.contiguous(), index.contiguous(), high.contiguous(), out, count,
                                               BLOCK=TILES.block, num_warps=TILES.num_warps)
    return out
