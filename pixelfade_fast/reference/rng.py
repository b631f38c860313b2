"""The noise/mask RNG contract in plain torch integer ops (DESIGN.md, "Noise and masks").

Every value here is a pure function of a 64-bit key and an element index, so no noise is ever stored:
Philox4x32-10 with key (k0, k1) = (low, high 32 bits of the key) and counter (low, high 32 bits of the index,
0, 0) -- exactly Triton's ``tl.randint4x(key, index)`` -- and Triton's uniform / Box-Muller conversions.

Unsigned 32-bit words are carried in int64 tensors (values in [0, 2**32)); 64-bit keys are int64 tensors
holding the uint64 bits. Works on any device; no host reads.
"""
from __future__ import annotations

from typing import Sequence

import torch

MASK32 = 0xFFFFFFFF
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUNDS = 10
UNIFORM_SCALE = 4.6566127342e-10  # 2**-31, as Triton writes it
NORMAL_MIN_UNIFORM = 1e-7
TWO_PI = 6.283185307179586


def _mul32(a: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of the 64-bit product of uint32 words ``a`` and constant ``b``.

    int64 cannot hold a full 32x32 product, so ``b`` is split into 16-bit halves (each partial product < 2**48).
    """
    low_part = a * (b & 0xFFFF)
    high_part = a * (b >> 16)
    partial = low_part + ((high_part & 0xFFFF) << 16)
    return (partial >> 32) + (high_part >> 16), partial & MASK32


def philox4x32(key: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Philox4x32-10 words (r0, r1, r2, r3), each int64 in [0, 2**32), for int64 ``key`` and ``index``.

    ``key`` holds uint64 bits (negative int64 values are keys >= 2**63); ``index`` must be >= 0.
    The two broadcast against each other.
    """
    key = key.to(torch.int64)
    index = index.to(torch.int64)
    k0 = key & MASK32
    k1 = (key >> 32) & MASK32  # arithmetic shift, so mask off the sign extension
    c0 = index & MASK32
    c1 = (index >> 32) & MASK32
    c0, c1 = torch.broadcast_tensors(c0, c1)
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    for _ in range(PHILOX_ROUNDS):
        hi_b, lo_b = _mul32(c2, PHILOX_ROUND_B)
        hi_a, lo_a = _mul32(c0, PHILOX_ROUND_A)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + PHILOX_KEY_A) & MASK32
        k1 = (k1 + PHILOX_KEY_B) & MASK32
    return c0, c1, c2, c3


def uniform_from_word(word: torch.Tensor) -> torch.Tensor:
    """float32 uniform in [0, 1) from a uint32 word: as int32 s, s <- ~s if negative, times 2**-31."""
    signed = torch.where(word >= 2**31, word - 2**32, word)
    folded = torch.where(signed < 0, -signed - 1, signed)
    return folded.to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32)


def normal_from_words(r0: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """float32 standard normal by Box-Muller from two uint32 words (Triton's ``tl.randn``)."""
    u0 = torch.clamp_min(uniform_from_word(r0), NORMAL_MIN_UNIFORM)
    u1 = uniform_from_word(r1)
    radius = torch.sqrt(torch.log(u0) * -2.0)
    return radius * torch.cos(u1 * torch.tensor(TWO_PI, dtype=torch.float32))


def mask_id_from_word(word: torch.Tensor, num_masks: int) -> torch.Tensor:
    """Mask id in [0, num_masks) from a uint32 word: min(I - 1, floor(u * I)), as uint8."""
    scaled = torch.floor(uniform_from_word(word) * num_masks)
    return torch.clamp_max(scaled, num_masks - 1).to(torch.uint8)


def _wrap_int64(value: int) -> int:
    """A Python integer mod 2**64, as the int64 with the same bits."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix64_int(x: int) -> int:
    """splitmix64 of a Python integer (mod 2**64); returns the uint64 value as a non-negative int."""
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def derive_keys(seed: int, uids: Sequence[int]) -> torch.Tensor:
    """Per-image (noise key K_i, mask key M_i) as int64 [B, 2] holding uint64 bits.

    K_i = splitmix64(seed xor splitmix64(uid_i)), M_i = splitmix64(K_i). Runs on the host before any loop.
    """
    rows = []
    for uid in uids:
        if int(uid) < 0:
            raise ValueError(f"image uids must be non-negative integers, got {uid}")
        noise_key = splitmix64_int((seed & ((1 << 64) - 1)) ^ splitmix64_int(int(uid)))
        rows.append((_wrap_int64(noise_key), _wrap_int64(splitmix64_int(noise_key))))
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)


def as_uint64(value: int) -> int:
    """The unsigned value of an int64 key (for printing and comparisons with known-answer vectors)."""
    return value & ((1 << 64) - 1)
