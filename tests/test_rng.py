"""The noise/mask RNG contract of the reference: known answers, Triton's own Philox, and the statistics of η."""
import math
import os

import pytest
import torch

from helpers import load_rng_vectors
from pixelfade_fast import reference as R
from pixelfade_fast.reference.rng import _wrap_int64




def test_splitmix64_known_answers():
    for row in load_rng_vectors()["splitmix64"]:
        assert R.splitmix64_int(int(row["in"])) == int(row["out"])


def test_philox_and_conversions_known_answers():
    rows = load_rng_vectors()["philox"]
    keys = torch.tensor([_wrap_int64(int(r["key"])) for r in rows])
    index = torch.tensor([int(r["index"]) for r in rows])
    words = torch.stack(R.philox4x32(keys, index), dim=1)
    assert words.tolist() == [r["words"] for r in rows]
    uniform = R.uniform_from_word(words[:, 0])
    assert uniform.tolist() == [pytest.approx(r["uniform0"], abs=0) for r in rows]
    normal = R.normal_from_words(words[:, 0], words[:, 1])
    assert torch.allclose(normal.double(), torch.tensor([r["normal"] for r in rows], dtype=torch.float64), atol=1e-6)
    assert R.mask_id_from_word(words[:, 0], 5).tolist() == [r["mask_id_5"] for r in rows]


def test_derive_keys_refuses_negative_uids():
    for contract in (1, 2):
        with pytest.raises(ValueError, match="non-negative"):
            R.derive_keys(1, [-1], contract)


def random_keys(count: int, generator: torch.Generator) -> torch.Tensor:
    """int64 keys spread over the whole uint64 range, with the edges included."""
    edges = torch.tensor([0, 1, 2**63 - 1, -(2**63), -1], dtype=torch.int64)
    body = torch.randint(-(2**63), 2**63 - 1, (count - len(edges),), generator=generator, dtype=torch.int64)
    return torch.cat([edges, body])


def test_reference_philox_equals_triton_randint4x():
    """Bit for bit against Triton's tl.randint4x, run by Triton's interpreter on the CPU."""
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("TRITON_INTERPRET=1 must be set before triton is imported (tests/conftest.py does it)")
    triton = pytest.importorskip("triton")
    import triton.language as tl

    @triton.jit
    def randint4x_kernel(key_ptr, index_ptr, out_ptr, n, BLOCK: tl.constexpr):
        key = tl.load(key_ptr + tl.program_id(0))
        offsets = tl.arange(0, BLOCK)
        valid = offsets < n
        index = tl.load(index_ptr + offsets, mask=valid, other=0)
        r0, r1, r2, r3 = tl.randint4x(key, index)
        base = out_ptr + tl.program_id(0) * n * 4 + offsets * 4
        tl.store(base + 0, r0.to(tl.int32, bitcast=True), mask=valid)
        tl.store(base + 1, r1.to(tl.int32, bitcast=True), mask=valid)
        tl.store(base + 2, r2.to(tl.int32, bitcast=True), mask=valid)
        tl.store(base + 3, r3.to(tl.int32, bitcast=True), mask=valid)

    generator = torch.Generator().manual_seed(1234)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    keys = random_keys(12, generator)
    index = torch.cat([torch.tensor([0, 1, 2**31, 2**32 - 1, 2**32, 2**40 + 5]),
                       torch.randint(0, 2**44, (10,), generator=generator)])
    out = torch.empty(len(keys), len(index), 4, dtype=torch.int32)
    keys_d, index_d, out_d = keys.to(device), index.to(device), out.to(device)
    randint4x_kernel[(len(keys),)](keys_d, index_d, out_d, len(index), BLOCK=16)
    triton_words = out_d.cpu().to(torch.int64) & 0xFFFFFFFF
    reference_words = torch.stack(R.philox4x32(keys[:, None], index[None, :]), dim=-1)
    mismatch = (triton_words != reference_words).nonzero()
    assert mismatch.numel() == 0, f"{len(mismatch)} words differ, first at (key, index, word) {mismatch[:5].tolist()}"


def test_noise_is_standard_normal_over_a_million_samples():
    keys = R.derive_keys(99, [0, 1, 2, 3])
    noise = R.fade_noise(keys, (3, 256, 326)).double().flatten()  # 4 * 250,368 ≈ 1.0e6 values
    n = noise.numel()
    assert n >= 10**6
    # five standard errors of each statistic for n samples of N(0, 1)
    assert abs(noise.mean().item()) < 5 / math.sqrt(n)
    assert abs(noise.std().item() - 1.0) < 5 / math.sqrt(2 * n)
    inside_one_sigma = (noise.abs() < 1).double().mean().item()
    p = math.erf(1 / math.sqrt(2))
    assert abs(inside_one_sigma - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.isfinite(noise).all()


@pytest.mark.parametrize("pixel_masks", [False, True])
@pytest.mark.parametrize("num_masks", [1, 5, 7])
def test_masks_are_disjoint_and_cover_every_element(num_masks, pixel_masks):
    keys = R.derive_keys(5, [10, 11])
    shape = (3, 40, 24)
    ids = R.fade_mask_ids(keys, shape, num_masks, pixel_masks)
    assert ids.dtype == torch.uint8 and ids.shape == (2, *shape)
    assert int(ids.max()) < num_masks
    masks = torch.stack([ids == j for j in range(num_masks)])  # [I, B, C, H, W]
    assert torch.equal(masks.sum(0), torch.ones_like(ids, dtype=torch.int64))  # each element in exactly one mask
    per_mask = masks.flatten(2).sum(2).double()  # [I, B]
    count = ids[0].numel() / (3 if pixel_masks else 1)
    expected = count / num_masks
    spread = 5 * math.sqrt(count * (1 / num_masks) * (1 - 1 / num_masks)) * (3 if pixel_masks else 1)
    assert ((per_mask - expected * (3 if pixel_masks else 1)).abs() <= spread + 1e-9).all()
    if pixel_masks:
        assert torch.equal(ids, ids[:, :1].expand_as(ids))
    if num_masks > 1:
        if not pixel_masks:
            assert not torch.equal(ids[:, 0], ids[:, 1])  # channels draw their own ids
        assert not torch.equal(ids[0], ids[1])  # images draw their own ids
