"""RNG contract v2 (DESIGN.md, "Contract v2"): known answers on every backend that runs here, and v1's through the
same [B, 4] keys layout.

The vectors in tests/data/rng_vectors_v2.json were made by an implementation independent of this project's: the
BLAKE2b key derivation, the Philox words with the counter's upper words in use, η and the mask ids. Backends:
the reference, the C++ CPU kernels, the Triton kernels (under Triton's interpreter on the CPU), and the CUDA
kernels of both where a GPU is present (tests marked ``gpu``).
"""
import pytest
import torch

from helpers import load_rng_vectors, load_rng_vectors_v2
from op_backends import backend_cases
from op_inputs import as_int64
from pixelfade_fast import reference as R
from pixelfade_fast.reference.rng import KEY_WORDS

NOISE_ATOL = 1e-6  # η may differ in the last ulp of log/cos between backends
IMAGE = (3, 128, 128)  # 49152 elements: the vectors' indices 0, 1, 2 and 49151 fall inside


BACKENDS = backend_cases(names=("reference", "cpp", "triton"))


def _words(text: str) -> int:
    return int(text, 16)


def test_v2_key_derivation_known_answers():
    for row in load_rng_vectors_v2()["derive"]:
        keys = R.derive_keys(int(row["seed"], 16), [int(row["uid"])], contract=2)
        assert keys.shape == (1, KEY_WORDS) and keys.dtype == torch.int64
        assert [R.rng.as_uint64(v) for v in keys[0].tolist()] == [int(w) for w in row["words"]], row


def test_v2_key_derivation_is_keyed_blake2b_of_the_uid():
    """The contract text, restated with hashlib directly (big-endian seed bytes, little-endian uid and words)."""
    import hashlib

    seed, uid = 2**255 + 12345, 2**64 - 2
    digest = hashlib.blake2b(b"pixelfade/v2" + uid.to_bytes(8, "little"), digest_size=32,
                             key=seed.to_bytes(32, "big")).digest()
    expected = [int.from_bytes(digest[8 * k:8 * k + 8], "little") for k in range(4)]
    assert [R.rng.as_uint64(v) for v in R.derive_keys(seed, [uid])[0].tolist()] == expected  # v2 is the default


def test_v2_derivation_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="2\\^256"):
        R.derive_keys(2**256, [0], contract=2)
    with pytest.raises(ValueError, match="2\\^256"):
        R.derive_keys(-1, [0], contract=2)
    with pytest.raises(ValueError, match="non-negative"):
        R.derive_keys(5, [2**64], contract=2)
    with pytest.raises(ValueError, match="contract"):
        R.derive_keys(5, [0], contract=3)


def test_one_seed_bit_or_one_uid_changes_every_word():
    """A PRF: neighbouring seeds and uids share no word (splitmix64 keys of v1 did not either, but v1's were
    invertible; here nothing short of the seed gives another image's words)."""
    seed = int(load_rng_vectors_v2()["derive"][0]["seed"], 16)
    base = R.derive_keys(seed, [0, 1], contract=2)
    flipped = R.derive_keys(seed ^ 1, [0, 1], contract=2)
    assert (base[0] != base[1]).all() and (base != flipped).all()


def test_v1_keys_have_zero_counter_words():
    seed, uids = 0xDEADBEEF12345678, [0, 7, 2**40 + 3]
    keys = R.derive_keys(seed, uids, contract=1)
    for row, uid in zip(keys.tolist(), uids):
        noise_key = R.splitmix64_int(seed ^ R.splitmix64_int(uid))
        assert [R.rng.as_uint64(v) for v in row] == [noise_key, 0, R.splitmix64_int(noise_key), 0]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_random123_known_answers_with_every_counter_word(backend):
    vectors = load_rng_vectors_v2()["philox_kat"]["vectors"]
    key = [as_int64(_words(v["key"][0]) | _words(v["key"][1]) << 32) for v in vectors]
    index = [as_int64(_words(v["counter"][0]) | _words(v["counter"][1]) << 32) for v in vectors]
    high = [as_int64(_words(v["counter"][2]) | _words(v["counter"][3]) << 32) for v in vectors]
    words = backend.philox_words(*(torch.tensor(t, device=backend.device) for t in (key, index, high)))
    assert words.cpu().tolist() == [[_words(w) for w in v["out"]] for v in vectors]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_v2_philox_words_known_answers(backend):
    """Noise words = Philox(w0, (i, w1)), mask words = Philox(w2, (i, w3)), indices past 2^32 included."""
    rows = load_rng_vectors_v2()["philox"]
    keys = torch.cat([R.derive_keys(int(r["seed"], 16), [int(r["uid"])]) for r in rows]).to(backend.device)
    index = torch.tensor([int(r["index"]) for r in rows], device=backend.device)
    noise_words = backend.philox_words(keys[:, 0].contiguous(), index, keys[:, 1].contiguous())
    mask_words = backend.philox_words(keys[:, 2].contiguous(), index, keys[:, 3].contiguous())
    assert noise_words.cpu().tolist() == [r["noise_words"] for r in rows]
    assert mask_words.cpu().tolist() == [r["mask_words"] for r in rows]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_v2_noise_and_mask_ids_known_answers(backend):
    """η and the 5-mask ids of the vectors inside a 3x128x128 image, through fade_noise / fade_mask_ids."""
    rows = [r for r in load_rng_vectors_v2()["philox"] if int(r["index"]) < IMAGE[0] * IMAGE[1] * IMAGE[2]]
    assert len(rows) == 16
    images = sorted({(r["seed"], r["uid"]) for r in rows})
    keys = torch.cat([R.derive_keys(int(seed, 16), [int(uid)]) for seed, uid in images]).to(backend.device)
    noise = backend.fade_noise(keys, IMAGE).flatten(1).cpu()
    ids = backend.fade_mask_ids(keys, IMAGE, 5).flatten(1).cpu()
    for r in rows:
        image, index = images.index((r["seed"], r["uid"])), int(r["index"])
        assert abs(noise[image, index].item() - r["normal"]) <= NOISE_ATOL, r
        assert ids[image, index].item() == r["mask_id_5"], r


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_v1_known_answers_through_the_four_word_layout(backend):
    """A v1 image's keys row (K, 0, M, 0) gives v1's committed η and mask ids on the same kernels."""
    rows = [r for r in load_rng_vectors()["philox"] if int(r["index"]) < 4096]
    keys = torch.tensor([[as_int64(int(r["key"])), 0] * 2 for r in rows], device=backend.device)
    noise = backend.fade_noise(keys, (1, 64, 64)).flatten(1).cpu()
    ids = backend.fade_mask_ids(keys, (1, 64, 64), 5).flatten(1).cpu()
    words = backend.philox_words(keys[:, 0].contiguous(), torch.tensor([int(r["index"]) for r in rows],
                                                                        device=backend.device),
                                 torch.zeros(len(rows), dtype=torch.int64, device=backend.device))
    assert words.cpu().tolist() == [r["words"] for r in rows]
    for row, r in enumerate(rows):
        assert abs(noise[row, int(r["index"])].item() - r["normal"]) <= NOISE_ATOL, r
        assert ids[row, int(r["index"])].item() == r["mask_id_5"], r


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_each_counter_word_feeds_its_own_stream(backend):
    """Changing the noise counter word changes η but not the mask ids, and the mask counter word the reverse:
    a kernel that read the wrong column, or ignored one, fails here."""
    keys = R.derive_keys(2**200 + 9, [3, 4]).to(backend.device)
    shape = (2, 8, 8)
    noise, ids = backend.fade_noise(keys, shape), backend.fade_mask_ids(keys, shape, 7, True)
    for column in range(KEY_WORDS):
        changed = keys.clone()
        changed[:, column] ^= 1 << 40
        noise_changed = not torch.equal(backend.fade_noise(changed, shape), noise)
        ids_changed = not torch.equal(backend.fade_mask_ids(changed, shape, 7, True), ids)
        assert (noise_changed, ids_changed) == ((True, False) if column < 2 else (False, True)), column
