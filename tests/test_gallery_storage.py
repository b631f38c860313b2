"""pixelfade protect --format jpeg|webp --quality Q: the manifest's figures are the decoded files', resume redoes a
lost file byte for byte, and a bad or mismatched storage setting is one line (issue 23)."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from gallery_fixtures import SIZE, private_seed_file, run_cli, tiny_weights, write_images
from pixelfade_fast.config import FadeConfig
from pixelfade_fast.data.images import load_image
from pixelfade_fast.engine import extract_features, per_image_loss
from pixelfade_fast.engine import stored
from pixelfade_fast.engine.stored import FALLBACK_ROUNDS, ROUND_STEPS, fallback_policy
from pixelfade_fast.gallery import read_run_record, refine_missed
from pixelfade_fast.gallery.manifest import Manifest
from pixelfade_fast.models.spec import load_model_spec
from pixelfade_fast.storage_format import StorageFormat, jpeg_tables

NAMES = ["a.jpg", "b.png", "cam1/c.png"]


@pytest.fixture()
def gallery(tmp_path):
    root = tmp_path / "in"
    write_images(root, NAMES, seed=3)
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    seed_file = private_seed_file(tmp_path / "seed", 0xABCDEF << 200 | 77)
    return root, ["--model", f"tiny_cnn:{weights}"], seed_file, weights


def _recomputed(root, out, entries, weights) -> dict[str, float]:
    """Each protected entry's loss recomputed from its decoded output file against its original."""
    model = load_model_spec(f"tiny_cnn:{weights}", input_size=SIZE).eval()
    originals = torch.stack([load_image(root / e.path, SIZE) for e in entries])
    stored = torch.stack([load_image(out / e.output) for e in entries])
    target = extract_features(model, originals)
    loss = per_image_loss(extract_features(model, stored), target)
    return {e.path: (value, bool(value < eps)) for e, value, eps in
            zip(entries, loss.tolist(), FadeConfig().epsilon_of(target).tolist())}


@pytest.mark.parametrize("name, suffix", [("jpeg", ".jpg"), ("webp", ".webp")])
def test_manifest_figures_are_those_of_the_decoded_file(gallery, tmp_path, name, suffix):
    root, model, seed_file, weights = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--format", name, "--quality", "80") == 0
    entries = Manifest(out / "manifest.jsonl").read()
    assert sorted(e.output for e in entries) == sorted(n.rsplit(".", 1)[0] + suffix for n in NAMES)
    recomputed = _recomputed(root, out, entries, weights)
    for entry in entries:
        loss, met = recomputed[entry.path]
        assert entry.final_loss == pytest.approx(loss, rel=1e-4, abs=1e-6) and entry.met_epsilon == met
        assert entry.quality in (80, 85, 90) and entry.fallback_steps >= 0
        with Image.open(out / entry.output) as image:
            assert image.format == {"jpeg": "JPEG", "webp": "WEBP"}[name]
            if name == "jpeg":  # the file is encoded at the quality its line records
                assert (tuple(image.quantization[0]), tuple(image.quantization[1])) == jpeg_tables(entry.quality)
    storage = read_run_record(out).storage
    assert storage["format"] == name and storage["quality"] == 80 and "pillow" in storage


def test_a_deleted_jpeg_is_redone_on_resume_byte_for_byte(gallery, tmp_path, capsys):
    root, model, seed_file, _ = gallery
    out = tmp_path / "out"
    args = [root, out, *model, "--seed-file", seed_file, "--format", "jpeg", "--quality", "85"]
    assert run_cli(*args) == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*.jpg")}
    manifest = (out / "manifest.jsonl").read_bytes()
    (out / "b.jpg").unlink()
    capsys.readouterr()
    assert run_cli(*args, "--resume") == 0
    assert "redoing 1 output" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.rglob("*.jpg")} == before
    assert (out / "manifest.jsonl").read_bytes() == manifest


@pytest.mark.parametrize("extra, message", [
    (["--format", "jpeg", "--quality", "0"], "--quality must be an integer between 1 and 100, got 0"),
    (["--format", "webp", "--quality", "101"], "--quality must be an integer between 1 and 100, got 101"),
    (["--quality", "90"], "--quality 90 does not apply to png"),
])
def test_a_bad_quality_is_one_line_and_writes_nothing(gallery, tmp_path, capsys, extra, message):
    root, model, seed_file, _ = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists() and not seed_file.read_text().count("id ")


def test_resume_with_another_format_or_quality_is_refused_by_name(gallery, tmp_path, capsys):
    root, model, seed_file, _ = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--format", "jpeg") == 0
    for extra in (["--format", "jpeg", "--quality", "80"], ["--format", "png"]):
        capsys.readouterr()
        assert run_cli(root, out, *model, "--seed-file", seed_file, "--resume", *extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "storage (--format, --quality)" in err[0]


def test_png_records_its_format_and_old_records_read_as_png(gallery, tmp_path):
    root, model, seed_file, _ = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, *model, "--seed-file", seed_file) == 0
    assert read_run_record(out).storage == {"format": "png"}
    assert all(e.quality is None and e.fallback_steps == 0 for e in Manifest(out / "manifest.jsonl").read())
    record = json.loads((out / "run.json").read_text())
    del record["storage"]  # a run made before storage formats
    (out / "run.json").write_text(json.dumps(record))
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--resume") == 0
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--resume", "--format", "jpeg") == 2


def test_the_fallback_bounds_are_recorded_and_resume_refuses_other_bounds(gallery, tmp_path, capsys):
    root, model, seed_file, weights = gallery
    out = tmp_path / "out"
    args = [root, out, *model, "--seed-file", seed_file, "--format", "webp", "--quality", "80"]
    assert run_cli(*args) == 0
    storage = read_run_record(out).storage
    assert storage == StorageFormat("webp", 80).settings() | fallback_policy(StorageFormat("webp", 80))
    assert storage["fallback_rounds"] == FALLBACK_ROUNDS and storage["round_steps"] == ROUND_STEPS
    record = json.loads((out / "run.json").read_text())
    # the bounds a run before the real-codec rounds recorded: its files came from another fallback
    for key in ("fallback", "fallback_rounds", "round_steps", "fallback_beta", "fallback_margin"):
        del record["storage"][key]
    record["storage"]["fallback_steps"] = 40
    (out / "run.json").write_text(json.dumps(record))
    assert read_run_record(out).storage["fallback_steps"] == 40  # an old record stays readable
    lost = (out / "b.webp").read_bytes()
    (out / "b.webp").unlink()
    capsys.readouterr()
    assert run_cli(*args, "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "storage (--format, --quality)" in err[0] and "fallback_steps" in err[0]
    assert not (out / "b.webp").exists()  # refused before it redid anything
    (out / "b.webp").write_bytes(lost)
    # refine takes no fallback, so it continues the old run (checking its setup first), whose bounds stay recorded
    tiny = load_model_spec(f"tiny_cnn:{weights}", input_size=SIZE)
    refine_missed(tiny, root, out, steps=2, log=lambda message: None)
    assert read_run_record(out).storage["fallback_steps"] == 40


def test_refine_continues_a_jpeg_run_on_its_decoded_files(gallery, tmp_path, monkeypatch):
    root, model, seed_file, weights = gallery
    out = tmp_path / "out"
    # ε this small is missed by every image, fallback or not; a run with one round of the fallback (its rounds
    # are what refine does: after all sixteen, four more steps find nothing) leaves refine work to do
    strict = ["--epsilon", "1e-7"]
    monkeypatch.setattr(stored, "FALLBACK_ROUNDS", 1)
    assert run_cli(root, out, *model, "--seed-file", seed_file, "--format", "jpeg", "--quality", "80", *strict) == 0
    before = {e.path: e for e in Manifest(out / "manifest.jsonl").read()}
    assert not any(e.met_epsilon for e in before.values())
    tiny = load_model_spec(f"tiny_cnn:{weights}", input_size=SIZE)
    report = refine_missed(tiny, root, out, steps=4, log=lambda message: None)
    after = Manifest(out / "manifest.jsonl").read()
    assert report.missed == len(NAMES)
    recomputed = _recomputed(root, out, after, weights)
    for entry in after:
        old = before[entry.path]
        assert entry.final_loss <= old.final_loss and entry.quality == old.quality
        assert entry.final_loss == pytest.approx(recomputed[entry.path][0], rel=1e-4, abs=1e-6)
        assert entry.output_size == (out / entry.output).stat().st_size
        with Image.open(out / entry.output) as image:
            assert (tuple(image.quantization[0]), tuple(image.quantization[1])) == jpeg_tables(entry.quality)
    assert report.improved == sum(e.refine_steps == 4 for e in after) > 0
