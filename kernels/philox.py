"""Triton device helpers for the noise/mask RNG contract (DESIGN.md, "Noise and masks", "Contract v2").

Philox4x32-10 is called through Triton's own round function with the counter split spelled out here
(c0, c1) = (low, high 32 bits of the index), (c2, c3) = (low, high 32 bits of the stream's counter word), and
the key split into (low, high) 32-bit halves, so the words do not depend on how a Triton version lowers 64-bit
offsets inside ``tl.randint4x``. An image's keys row is (noise key, noise counter word, mask key, mask counter
word); ``load_streams`` reads it.
The float conversions follow ``tl.rand`` / ``tl.randn`` with a correctly rounded square root, so the
values match the reference's float32 arithmetic up to the last ulp of log and cos.
"""
import triton
import triton.language as tl

PHILOX_ROUNDS = tl.constexpr(10)


@triton.jit
def philox_words(key, counter_high, index):
    """Philox4x32-10 words (r0, r1, r2, r3) as uint32 blocks.

    ``key``, ``counter_high``: int64 (scalar or block) holding uint64 bits. ``index``: int32 or int64 block
    (int64: uint64 bits).
    """
    key_lo = key.to(tl.uint32)  # truncation keeps bits 0..31
    key_hi = (key >> 32).to(tl.uint32)  # bits 32..63 whatever the sign extension of the shift
    counter_lo = index.to(tl.uint32)
    if tl.constexpr(index.dtype.primitive_bitwidth > 32):
        counter_hi = (index >> 32).to(tl.uint32)
    else:
        counter_hi = counter_lo * 0
    zero = counter_lo * 0  # broadcasts the stream's words to the index block
    word2 = counter_high.to(tl.uint32) + zero
    word3 = (counter_high >> 32).to(tl.uint32) + zero
    return tl.random.philox_impl(counter_lo, counter_hi, word2, word3, key_lo, key_hi, PHILOX_ROUNDS)


@triton.jit
def load_streams(keys_ptr, image):
    """(noise key, noise counter word, mask key, mask counter word) of one image's int64 keys row."""
    row = keys_ptr + image * 4
    return tl.load(row), tl.load(row + 1), tl.load(row + 2), tl.load(row + 3)


@triton.jit
def uniform_from_word(word):
    """float32 in [0, 1) from a uint32 word: int32 bits s, ~s if negative, times 2**-31 (as tl.rand)."""
    signed = word.to(tl.int32, bitcast=True)
    folded = tl.where(signed < 0, ~signed, signed)
    return folded.to(tl.float32) * 4.6566127342e-10


@triton.jit
def normal_from_words(word0, word1):
    """float32 standard normal by Box-Muller from two uint32 words (as tl.randn)."""
    u0 = tl.maximum(uniform_from_word(word0), 1.0e-7)
    u1 = uniform_from_word(word1)
    radius = tl.sqrt_rn(tl.log(u0) * -2.0)
    return radius * tl.cos(u1 * 6.283185307179586)


@triton.jit
def mask_id_from_word(word, num_masks):
    """Mask id in [0, num_masks) as int32: min(I - 1, floor(u * I))."""
    scaled = tl.floor(uniform_from_word(word) * num_masks)
    return tl.minimum(scaled.to(tl.int32), num_masks - 1)


@triton.jit
def noise_at(noise_key, noise_counter, index):
    """η at ``index`` for one image: Box-Muller of words r0, r1 of Philox(noise_key, (index, noise_counter))."""
    r0, r1, _, _ = philox_words(noise_key, noise_counter, index)
    return normal_from_words(r0, r1)


@triton.jit
def mask_id_at(mask_key, mask_counter, index, num_masks):
    """Mask id at ``index`` for one image from word r0 of Philox(mask_key, (index, mask_counter))."""
    r0, _, _, _ = philox_words(mask_key, mask_counter, index)
    return mask_id_from_word(r0, num_masks)
