"""The noise/mask RNG contract in plain torch integer ops (DESIGN.md, "Noise and masks", "Contract v2").

Every value here is a pure function of an image's key words and an element index, so no noise is ever stored:
Philox4x32-10 with key (k0, k1) = (low, high 32 bits of a 64-bit key) and counter (low, high 32 bits of the
index, low, high 32 bits of a 64-bit counter word), and Triton's uniform / Box-Muller conversions.

An image's keys are four 64-bit words (``KEY_WORDS``): noise key, noise counter word, mask key, mask counter
word. Contract v2 derives all four from a 256-bit secret with keyed BLAKE2b; contract v1 (runs made before it)
has a 64-bit secret, splitmix64 keys and zero counter words, so both run through the same kernels.

Unsigned 32-bit words are carried in int64 tensors (values in [0, 2**32)); 64-bit words are int64 tensors
holding the uint64 bits. Works on any device; no host reads.
"""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

import torch

from ..op_checks import KEY_WORDS

MASK32 = 0xFFFFFFFF
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUNDS = 10
UNIFORM_SCALE = 4.6566127342e-10  # 2**-31, as Triton writes it
NORMAL_MIN_UNIFORM = 1e-7
TWO_PI = 6.283185307179586

# Columns of a keys tensor [B, KEY_WORDS]: Philox key and counter word of the noise, then of the mask ids.
NOISE_KEY, NOISE_COUNTER, MASK_KEY, MASK_COUNTER = range(KEY_WORDS)
RNG_CONTRACTS = (1, 2)
DEFAULT_CONTRACT = 2
SEED_BITS = {1: 64, 2: 256}  # a run secret's size under each contract
V2_PERSONALISATION = b"pixelfade/v2"


def _mul32(a: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of the 64-bit product of uint32 words ``a`` and constant ``b``.

    int64 cannot hold a full 32x32 product, so ``b`` is split into 16-bit halves (each partial product < 2**48).
    """
    low_part = a * (b & 0xFFFF)
    high_part = a * (b >> 16)
    partial = low_part + ((high_part & 0xFFFF) << 16)
    return (partial >> 32) + (high_part >> 16), partial & MASK32


def philox4x32(key: torch.Tensor, index: torch.Tensor,
               counter_high: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Philox4x32-10 words (r0, r1, r2, r3), each int64 in [0, 2**32), for int64 ``key`` and ``index``.

    The counter is (low, high 32 bits of ``index``, low, high 32 bits of ``counter_high``; default 0). Every
    argument holds uint64 bits (a negative int64 is a value >= 2**63); they broadcast against each other.
    """
    key = key.to(torch.int64)
    index = index.to(torch.int64)
    high = torch.zeros((), dtype=torch.int64, device=index.device) if counter_high is None else counter_high
    high = high.to(torch.int64)
    k0 = key & MASK32
    k1 = (key >> 32) & MASK32  # arithmetic shift, so mask off the sign extension
    c0, c1, c2, c3 = torch.broadcast_tensors(index & MASK32, (index >> 32) & MASK32, high & MASK32,
                                             (high >> 32) & MASK32)
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


def check_contract(contract: int) -> int:
    if contract not in RNG_CONTRACTS:
        raise ValueError(f"rng contract must be one of {RNG_CONTRACTS}, got {contract!r}")
    return contract


def random_seed(contract: int = DEFAULT_CONTRACT) -> int:
    """A fresh secret from os.urandom: 256 bits under contract 2 (64 under contract 1)."""
    return int.from_bytes(os.urandom(SEED_BITS[check_contract(contract)] // 8), "big")


def seed_bytes(seed: int) -> bytes:
    """The 32 bytes of a v2 secret, big-endian (as its seed file writes it in hex)."""
    if not 0 <= seed < 2 ** SEED_BITS[2]:
        raise ValueError(f"a contract-2 seed is an integer in [0, 2^256), got {seed}")
    return seed.to_bytes(SEED_BITS[2] // 8, "big")


def _v2_words(secret: bytes, uid: int) -> tuple[int, int, int, int]:
    digest = hashlib.blake2b(V2_PERSONALISATION + uid.to_bytes(8, "little"), digest_size=32, key=secret).digest()
    return tuple(int.from_bytes(digest[8 * k:8 * k + 8], "little") for k in range(KEY_WORDS))


def _v1_words(seed: int, uid: int) -> tuple[int, int, int, int]:
    noise_key = splitmix64_int((seed & ((1 << 64) - 1)) ^ splitmix64_int(uid))
    return noise_key, 0, splitmix64_int(noise_key), 0


def derive_keys(seed: int, uids: Sequence[int], contract: int = DEFAULT_CONTRACT) -> torch.Tensor:
    """Per-image key words as int64 [B, 4] holding uint64 bits (columns NOISE_KEY .. MASK_COUNTER).

    Contract 2: (w0, w1, w2, w3) = the little-endian words of BLAKE2b(key = the seed's 32 bytes, data =
    "pixelfade/v2" + uid as 8 little-endian bytes, 32-byte digest): a keyed PRF, so one image's words reveal
    neither the seed nor another image's words. Contract 1 (runs made before v2): K = splitmix64(seed xor
    splitmix64(uid)), M = splitmix64(K), rows (K, 0, M, 0). Runs on the host before any loop.
    """
    check_contract(contract)
    seed = int(seed)
    secret = seed_bytes(seed) if contract == 2 else None
    rows = []
    for uid in uids:
        uid = int(uid)
        if not 0 <= uid < 2**64:
            raise ValueError(f"image uids must be non-negative integers below 2^64, got {uid}")
        words = _v2_words(secret, uid) if contract == 2 else _v1_words(seed, uid)
        rows.append([_wrap_int64(word) for word in words])
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, KEY_WORDS)


def as_uint64(value: int) -> int:
    """The unsigned value of an int64 key (for printing and comparisons with known-answer vectors)."""
    return value & ((1 << 64) - 1)
