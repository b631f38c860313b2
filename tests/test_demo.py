"""`make demo` (pixelfade_fast/demo.py), run small: the gallery command's outputs, the before/after picture,
Re-ID and the privacy check with its verdict, all from what the run itself wrote."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelfade_fast import demo
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.gallery.manifest import Manifest

SMALL = dict(demo.SAMPLE, num_ids_train=4, num_ids_test=2)
FAST = ("--steps", "3", "--init-steps", "1", "--final-steps", "1", "--finish-steps", "0")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    check = demo.run_demo(out, "cpu", attack_preset("demo", epochs=1), SMALL, FAST)
    return out, check


def test_the_main_job_writes_a_protected_gallery_folder(small_demo):
    out, check = small_demo
    gallery = sorted((out / "sample" / "bounding_box_test").glob("*.png"))
    assert len(gallery) == 2 * 2 == check["sample"]["gallery"]
    protected = out / "protected"
    assert (protected / "run.json").is_file()
    entries = Manifest(protected / "manifest.jsonl").read()
    assert sorted(e.path for e in entries) == sorted(p.name for p in gallery)
    for entry in entries:
        image = np.asarray(Image.open(protected / entry.output))
        assert image.shape == (128, 64, 3)
        original = np.asarray(Image.open(out / "sample" / "bounding_box_test" / entry.path))
        assert np.abs(image.astype(int) - original.astype(int)).mean() > 10  # protected, not a copy


def test_before_after_shows_originals_above_protected(small_demo):
    out, _ = small_demo
    picture = np.asarray(Image.open(out / "before_after.png").convert("RGB"))
    columns = min(demo.BEFORE_AFTER_COLUMNS, 4)
    assert picture.shape[0] == 2 * (128 + 2)  # two rows: originals, protected
    assert picture.shape[1] >= columns * 64
    names = sorted(p.name for p in (out / "sample" / "bounding_box_test").glob("*.png"))
    label = picture.shape[1] - columns * (64 + 2)
    first_original = np.asarray(Image.open(out / "sample" / "bounding_box_test" / names[0]))
    assert np.array_equal(picture[:128, label:label + 64], first_original)
    first_protected = np.asarray(Image.open(out / "protected" / names[0]))
    assert np.array_equal(picture[130:258, label:label + 64], first_protected)


def test_privacy_json_has_the_verdict_and_every_method(small_demo):
    out, check = small_demo
    saved = json.loads((out / "privacy.json").read_text())
    assert saved["verdict"]["status"] in ("conclusive", "inconclusive")
    assert saved["verdict"]["control"] == "blur"
    assert set(saved["privacy"]) == {"pixelfade", "blur"}
    for method, figures in saved["privacy"].items():
        assert np.isfinite(figures["unet_psnr"]) and -1 <= figures["unet_ssim"] <= 1
        assert figures["floor_psnr"] == pytest.approx(saved["floor"]["psnr"])
    blur = saved["privacy"]["blur"]  # the verdict is the control's own figures
    assert saved["verdict"]["unet_leakage_psnr"] == pytest.approx(blur["unet_psnr"] - saved["floor"]["psnr"])
    assert saved["verdict"]["status"] == ("conclusive" if blur["unet_leakage_psnr"] >= 3.0
                                          and blur["unet_leakage_ssim"] >= 0.10 else "inconclusive")
    for name in ("original->original", "original->protected"):
        assert 0 <= saved["reid"][name]["mAP"] <= 1
    assert saved["timings"]["total_s"] >= saved["timings"]["main_job_s"] > 0


def test_the_attacker_protects_other_identities_with_the_same_command(small_demo):
    out, _ = small_demo
    public = Manifest(out / "attacker" / "manifest.jsonl").read()
    gallery = Manifest(out / "protected" / "manifest.jsonl").read()
    public_ids = {e.path.split("_")[0] for e in public}
    assert len(public) == 4 * 2 and not public_ids & {e.path.split("_")[0] for e in gallery}
    assert json.loads((out / "attacker" / "run.json").read_text())["model_id"] == \
        json.loads((out / "protected" / "run.json").read_text())["model_id"]


def test_the_summary_names_the_verdict_and_the_outputs(small_demo, capsys):
    out, check = small_demo
    demo._print_summary(out, check)
    text = capsys.readouterr().out
    assert f"attack verdict: {check['verdict']['status']}" in text
    assert "recovery attack trained on 8 pairs" in text
    assert f"outputs in {out}/" in text and "before_after.png" in text


def test_the_sample_is_24_gallery_images_of_12_people_and_24_attacker_pairs_of_others(tmp_path):
    """README: 24 gallery images (12 identities x 2 cameras) and 24 public pairs of other identities."""
    split = generate_synthped(tmp_path, **demo.SAMPLE)
    assert len(split.gallery) == len(split.query) == len(split.train) == 24
    assert len(split.pids("gallery")) == 12 and split.camids("gallery") == {0, 1}
    assert not split.pids("train") & split.pids("gallery") and split.pids("query") == split.pids("gallery")
    again = generate_synthped(tmp_path / "again", **demo.SAMPLE)  # deterministic: the same pixels every time
    for first, second in zip(split.gallery + split.train, again.gallery + again.train):
        assert Path(first.path).name == Path(second.path).name
        assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
