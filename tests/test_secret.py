"""docs/gallery.md, "The secret", claim by claim: 256-bit seed files, private modes, weak seeds refused for new
runs, contract-1 runs still resumable with the same bits, protect()'s secret, and the threat model's statements
about the key derivation."""
import json
import os
import stat

import pytest
import torch

from gallery_fixtures import SIZE, output_bytes, run_cli, tiny_weights, write_images
from pixelfade_fast import FadeConfig, cli, protect
from pixelfade_fast import reference as R
from pixelfade_fast.evaluation import attacker_noise
from pixelfade_fast.gallery import merge_manifests, read_run_record
from pixelfade_fast.gallery.manifest import Manifest
from pixelfade_fast.gallery.seed_file import HEADER, peek_seed_file
from pixelfade_fast.reference import rng

NAMES = ["a.png", "b.png", "c.png", "d.png", "e.png"]  # batches of 2 (tests/gallery_fixtures.FAST): 3 batches
V1_SEED = 0x1234567890ABCDEF
V1_ID = "0123456789abcdef" * 2
V2_SEED = int.from_bytes(bytes(range(1, 33)), "big")


def v1_seed_text(seed: int = V1_SEED, run_id: str | None = V1_ID) -> str:
    """A seed file exactly as `pixelfade seed` wrote it before RNG contract 2."""
    return f"{HEADER}seed {seed:#018x}\n" + (f"id {run_id}\n" if run_id else "")


def write_private(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture()
def gallery(tmp_path):
    root = tmp_path / "in"
    write_images(root, NAMES)
    return root, ["--model", f"tiny_cnn:{tiny_weights(tmp_path / 'tiny.safetensors')}"]


# ------------------------------------------------------------------------------------------ the key derivation

def unsplitmix64(z: int) -> int:
    """The inverse of splitmix64 (each xor-shift and odd multiplication is invertible mod 2^64)."""
    mask = (1 << 64) - 1

    def unshift(value: int, shift: int) -> int:
        result = value
        for _ in range(64 // shift + 1):
            result = value ^ (result >> shift)
        return result & mask

    z = unshift(z, 31)
    z = (z * pow(0x94D049BB133111EB, -1, 1 << 64)) & mask
    z = unshift(z, 27)
    z = (z * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & mask
    z = unshift(z, 30)
    return (z - 0x9E3779B97F4A7C15) & mask


def test_one_contract_1_key_gives_the_seed_back():
    """Why contract 1 was replaced: from one image's noise key and its (public) uid, the seed follows."""
    uid = 987654321
    noise_key = rng.as_uint64(R.derive_keys(V1_SEED, [uid], contract=1)[0, 0].item())
    assert unsplitmix64(noise_key) ^ R.splitmix64_int(uid) == V1_SEED


def test_contract_2_words_of_one_image_share_nothing_with_a_neighbour():
    """Contract 2's words come from keyed BLAKE2b (known answers: tests/test_rng_contract_v2.py); the inversion
    above does not apply, and neighbouring uids get unrelated words."""
    words = R.derive_keys(V2_SEED, [41, 42], contract=2)
    assert unsplitmix64(rng.as_uint64(words[0, 0].item())) ^ R.splitmix64_int(41) != V2_SEED
    assert (words[0] != words[1]).all() and words.shape == (2, 4)


def test_protect_draws_256_bits_when_no_seed_is_given(monkeypatch):
    asked = []
    real = os.urandom

    def urandom(count):
        asked.append(count)
        return real(count)

    monkeypatch.setattr(rng.os, "urandom", urandom)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 4, 5))
    config = FadeConfig(steps=2, init_steps=1, final_steps=0, finish_steps=0)
    protect(model, torch.rand(1, 3, 8, 4), config, progress=False)
    assert asked == [32]
    protect(model, torch.rand(1, 3, 8, 4), config, progress=False, rng_contract=1)
    assert asked == [32, 8]


def test_a_gallery_run_without_seed_file_draws_256_bits(gallery, tmp_path, monkeypatch):
    root, model = gallery
    asked = []
    real = os.urandom
    monkeypatch.setattr(rng.os, "urandom", lambda count: asked.append(count) or real(count))
    assert run_cli(root, tmp_path / "out", *model) == 0
    assert asked == [32] and read_run_record(tmp_path / "out").rng_contract == 2


def test_the_known_noise_attacker_gets_the_noise_protect_used():
    """One mask and PRO on the last step: protect()'s output is the clamped η, and attacker_noise must be that η
    (contract 2 by default, contract 1 when both are told so)."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 4, 5))
    config = FadeConfig(steps=2, init_steps=2, final_steps=0, finish_steps=0, num_masks=1)
    images = torch.rand(3, 3, 8, 4)
    for contract in (2, 1):
        result = protect(model, images, config, uids=[5, 6, 7], seed=V1_SEED, progress=False, rng_contract=contract)
        eta = attacker_noise(V1_SEED, [5, 6, 7], (3, 8, 4), rng_contract=contract)
        assert (result.images - eta.clamp(0, 1)).abs().max() <= 1e-6, contract  # η: last-ulp freedom
    assert not torch.equal(attacker_noise(V1_SEED, [5], (3, 8, 4)), attacker_noise(V1_SEED, [5], (3, 8, 4), 1))


# ------------------------------------------------------------------------------------------------ seed files

def test_the_seed_command_writes_a_private_256_bit_contract_2_file(tmp_path, capsys):
    paths = [tmp_path / "s1", tmp_path / "s2"]
    for path in paths:
        assert cli.main(["seed", str(path)]) == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
        assert lines[0] == "contract 2" and lines[1].startswith("seed 0x") and len(lines[1]) == len("seed 0x") + 64
        assert peek_seed_file(path).contract == 2
    assert "256-bit" in capsys.readouterr().out
    assert peek_seed_file(paths[0]).seed != peek_seed_file(paths[1]).seed


def test_an_auto_created_seed_file_is_contract_2_and_recorded(gallery, tmp_path):
    root, model = gallery
    seed_file, out = tmp_path / "new", tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file) == 0
    assert peek_seed_file(seed_file).contract == 2 and peek_seed_file(seed_file).seed >= 2**32
    assert read_run_record(out).rng_contract == 2
    assert json.loads((out / "run.json").read_text())["rng_contract"] == 2


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o640, 0o604, 0o620])
def test_a_seed_file_open_to_group_or_others_is_refused(gallery, tmp_path, capsys, mode):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", f"contract 2\nseed {V2_SEED:#066x}\n", mode)
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file) == 2
    err = capsys.readouterr().err
    assert f"chmod 600 {seed_file}" in err and f"{mode:04o}" in err and "Traceback" not in err
    assert not out.exists() and stat.S_IMODE(seed_file.stat().st_mode) == mode  # nothing written, nothing changed


def test_resume_also_refuses_an_open_seed_file(gallery, tmp_path, capsys):
    root, model = gallery
    seed_file, out = write_private(tmp_path / "s", f"contract 2\nseed {V2_SEED:#066x}\n"), tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file) == 0
    seed_file.chmod(0o644)
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--resume") == 2
    assert "chmod 600" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [0o600, 0o400])
@pytest.mark.parametrize("contract", [1, 2])
def test_adding_the_id_never_loosens_the_mode(gallery, tmp_path, mode, contract):
    root, model = gallery
    text = v1_seed_text(run_id=None) if contract == 1 else f"contract 2\nseed {V2_SEED:#066x}\n"
    seed_file = write_private(tmp_path / "s", text, mode)
    weak = ["--allow-weak-seed"] if contract == 1 else []
    assert run_cli(root, tmp_path / "out", *model, "--seed-file", seed_file, *weak) == 0
    found = peek_seed_file(seed_file)
    assert found.run_id == read_run_record(tmp_path / "out").seed_id and found.contract == contract
    assert stat.S_IMODE(seed_file.stat().st_mode) == mode
    if contract == 1:  # still the format before contract 2, so older versions can read it too
        assert seed_file.read_text() == v1_seed_text(run_id=found.run_id)


@pytest.mark.parametrize("text, message, contract", [
    ("42\n", "below 2^32", 1),  # echo 42 > s
    (f"contract 2\nseed {2**32 - 1}\n", "below 2^32", 2),
    (v1_seed_text(), "64-bit secret", 1),
    (v1_seed_text(run_id=None), "64-bit secret", 1),
    (f"{V1_SEED}\n", "64-bit secret", 1),
])
def test_a_new_run_refuses_a_weak_seed_unless_allowed(gallery, tmp_path, capsys, text, message, contract):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", text)
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file) == 2
    err = capsys.readouterr().err
    assert message in err and "pixelfade seed" in err and "--allow-weak-seed" in err and "Traceback" not in err
    assert not out.exists() and seed_file.read_text() == text
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--allow-weak-seed") == 0
    assert read_run_record(out).rng_contract == contract


def test_a_strong_contract_2_seed_needs_no_flag(gallery, tmp_path):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", f"contract 2\nseed {2**32:#x}\n")
    assert run_cli(root, tmp_path / "out", *model, "--seed-file", seed_file) == 0


@pytest.mark.parametrize("text, message", [("contract 3\nseed 0x1\n", "unknown contract"),
                                           (f"seed {2**64:#x}\n", "[0, 2^64)"),
                                           (f"contract 2\nseed {2**256:#x}\n", "[0, 2^256)")])
def test_seed_files_the_contract_cannot_hold_are_refused(gallery, tmp_path, capsys, text, message):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", text)
    assert run_cli(root, tmp_path / "out", *model, "--seed-file", seed_file, "--allow-weak-seed") == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------------------- contract-1 runs live on

def _as_record_before_contract_2(out):
    """Rewrite OUT/run.json as pixelfade wrote it before contract 2: the same fields without rng_contract."""
    record = json.loads((out / "run.json").read_text())
    assert record.pop("rng_contract") == 1
    (out / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def test_a_contract_1_run_resumes_with_the_same_bits(gallery, tmp_path):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", v1_seed_text())
    whole = tmp_path / "whole"
    assert run_cli(root, whole, *model, "--seed-file", seed_file, "--allow-weak-seed") == 0
    reference = output_bytes(whole)

    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--allow-weak-seed") == 0
    _as_record_before_contract_2(out)
    entries = Manifest(out / "manifest.jsonl").read()
    last = max(e.batch for e in entries)
    for entry in entries:
        if entry.batch == last:
            (out / entry.output).unlink()
    kept = [line for line in (out / "manifest.jsonl").read_text().splitlines() if json.loads(line)["batch"] != last]
    (out / "manifest.jsonl").write_text("\n".join(kept) + "\n")
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--resume") == 0  # no flag needed
    assert output_bytes(out) == reference and len(reference) == len(NAMES)

    v2_file = write_private(tmp_path / "s2", f"contract 2\nseed {V1_SEED:#066x}\n")  # the same number, contract 2
    assert run_cli(root, tmp_path / "v2", *model, "--seed-file", v2_file) == 0
    assert all(output_bytes(tmp_path / "v2")[name] != reference[name] for name in reference)


def test_refine_and_merge_accept_a_contract_1_run(gallery, tmp_path, monkeypatch, capsys):
    root, model = gallery
    seed_file = write_private(tmp_path / "s", v1_seed_text())
    out = tmp_path / "out"
    for rank in range(2):  # two torchrun ranks
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert run_cli(root, out, *model, "--seed-file", seed_file, "--allow-weak-seed", "--epsilon", "0.00002",
                       "--epsilon-scale", "absolute", "--finish-steps", "0") == 0
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    _as_record_before_contract_2(out)
    merged = merge_manifests(out)
    assert merged.inputs == len(NAMES) and merged.ranks == 2
    assert cli.main(["refine", str(root), str(out), *model, "--steps", "3", "--device", "cpu", "--backend",
                     "reference", "--input-size", str(SIZE[0]), str(SIZE[1])]) == 0
    assert "refined" in capsys.readouterr().out
