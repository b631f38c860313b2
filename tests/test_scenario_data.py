"""SynthPed's captions and infrared-like camera: determinism, the sidecar format, the thermal mapping."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelfade_fast.data import generate_synthped, render_synthped_crop
from pixelfade_fast.data.captions import (CAPTIONS_FILE, CLOTH_NAMES, attributes, caption_vocabulary, cloth_name,
                                          read_captions, tokenize_words, write_captions)
from pixelfade_fast.data.records import DatasetNotFoundError
from pixelfade_fast.data.synthped import read_modalities, synthped_captions
from pixelfade_fast.data.synthped_infrared import (BACKGROUND, CARRIED, CLOTHING, HAIR_TEMPERATURE, LUMA,
                                                   SKIN_TEMPERATURE, absorbed_temperature, render_infrared_crop)
from pixelfade_fast.data.synthped_looks import CLOTH_PALETTE, _jitter, sample_camera, sample_identity, sample_shot
from pixelfade_fast.data.synthped_render import SHADING

TINY = dict(num_ids_train=2, num_ids_test=2, images_per_id_per_cam=1, num_cams=2, size=(32, 16), num_distractors=1,
            infrared_cams=1, captions_per_image=2)


def _folder_captions(root: Path) -> dict:
    return {folder: (root / folder / CAPTIONS_FILE).read_bytes()
            for folder in ("bounding_box_train", "query", "bounding_box_test")}


def test_captions_and_infrared_images_are_deterministic_per_seed(tmp_path):
    a = generate_synthped(tmp_path / "a", seed=0, **TINY)
    generate_synthped(tmp_path / "b", seed=0, num_workers=2, **TINY)
    generate_synthped(tmp_path / "c", seed=1, **TINY)
    assert _folder_captions(tmp_path / "a") == _folder_captions(tmp_path / "b")
    assert all(x != y for x, y in zip(_folder_captions(tmp_path / "a").values(),
                                      _folder_captions(tmp_path / "c").values()))
    infrared = [r for r in a.gallery + a.query + a.train if r.camid == 2]
    assert infrared and {r.camid for r in a.train} == {0, 1, 2}
    for record in infrared:
        other = Path(str(record.path).replace(str(tmp_path / "a"), str(tmp_path / "b")))
        assert Path(record.path).read_bytes() == other.read_bytes()
    # The written captions are synthped_captions', and the infrared files render_synthped_crop(infrared=True)'s.
    captions = read_captions(tmp_path / "a" / "query")
    assert captions[str(tmp_path / "a/query/0003_c3s1_000001_00.png")] == synthped_captions(0, 3, 2, 0, 2, query=True)
    written = np.asarray(Image.open(tmp_path / "a/bounding_box_train/0002_c3s1_000000_00.png"))
    assert np.array_equal(written, render_synthped_crop(0, 2, 2, 0, (32, 16), infrared=True))
    assert synthped_captions(0, 3, 2, 0) != synthped_captions(1, 3, 2, 0)
    assert read_modalities(tmp_path / "a") == ({0, 1}, {2})


def test_infrared_cameras_leave_the_visible_images_unchanged(tmp_path):
    plain = {**TINY, "num_distractors": 0, "infrared_cams": 0, "captions_per_image": 0}
    generate_synthped(tmp_path / "rgb", seed=4, **plain)
    generate_synthped(tmp_path / "both", seed=4, **{**plain, "infrared_cams": 2})
    rgb = {p.relative_to(tmp_path / "rgb"): p.read_bytes() for p in (tmp_path / "rgb").rglob("*.png")}
    both = {p.relative_to(tmp_path / "both"): p.read_bytes() for p in (tmp_path / "both").rglob("*.png")}
    assert all(both[name] == data for name, data in rgb.items())
    assert {name.name[5:7] for name in both.keys() - rgb.keys()} == {"c3", "c4"}  # the infrared cameras
    assert not (tmp_path / "rgb" / "modalities.json").exists()
    with pytest.raises(DatasetNotFoundError, match="modalities.json"):
        read_modalities(tmp_path / "rgb")
    with pytest.raises(DatasetNotFoundError, match="captions.jsonl"):
        read_captions(tmp_path / "rgb" / "query")


def test_caption_sidecar_round_trip_and_errors(tmp_path):
    entries = [("b.png", 7, 1, ["A person in a red coat.", "Someone, somewhere."]), ("a.png", 0, 0, ["x"])]
    path = write_captions(tmp_path, entries)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["image"] for line in lines] == ["a.png", "b.png"]  # sorted by file name
    assert lines[1] == {"image": "b.png", "pid": 7, "camid": 1, "captions": entries[0][3]}
    assert read_captions(tmp_path) == {str(tmp_path / "a.png"): ["x"], str(tmp_path / "b.png"): entries[0][3]}
    path.write_text('{"image": "a.png"}\n')
    with pytest.raises(ValueError, match=r"captions.jsonl:1"):
        read_captions(tmp_path)


def test_colour_names_recover_the_palette_entry_through_the_jitter():
    rng = np.random.default_rng(0)
    for index, colour in enumerate(CLOTH_PALETTE):
        assert all(cloth_name(_jitter(rng, colour, 0.03)) == CLOTH_NAMES[index] for _ in range(200))


def test_captions_name_the_look_and_use_only_the_vocabulary():
    vocabulary = set(caption_vocabulary())
    camera = sample_camera(np.random.default_rng([0, 1, 0]))
    for pid in range(1, 60):
        look = sample_identity(np.random.default_rng([0, 0, pid]))
        attrs = attributes(look)
        for caption in synthped_captions(0, pid, 0, 0, 3):
            words = tokenize_words(caption)
            assert set(words) <= vocabulary, set(words) - vocabulary
            assert attrs["upper"] in words and attrs["lower"] in words  # clothing colours are always named
    assert sample_shot(np.random.default_rng(0), camera).back_view in (True, False)


def _quiet_scene(seed: int, pid: int):
    """A look, camera and shot with every nuisance off: no blur, noise, gain, gamma, light slope, clutter,
    occluder or texture; the person upright, front view, centred."""
    look = dataclasses.replace(sample_identity(np.random.default_rng([seed, 0, pid])), pattern="plain", logo=None,
                               bag_kind="none", hat=None, lower_kind="trousers")
    camera = dataclasses.replace(sample_camera(np.random.default_rng([seed, 1, 0])), texture_amp=0.0, gamma=1.0,
                                 blur=0.0, noise=0.0, aspect=1.0, shear=0.0)
    shot = dataclasses.replace(sample_shot(np.random.default_rng([seed, 2, pid]), camera), back_view=False, turn=1.0,
                               mirror=False, scale=0.9, x_shift=0.0, y_shift=0.5, shear=0.0, gain=1.0,
                               side_light=0.0, blur=0.0, clutter=np.zeros((0, 5)), occluder=None)
    return look, camera, shot


@pytest.mark.parametrize("pid", [1, 2, 3])
def test_infrared_intensity_follows_the_thermal_mapping(pid):
    look, camera, shot = _quiet_scene(5, pid)
    height, width = 256, 128
    image = render_infrared_crop(look, camera, shot, (height, width))
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    grey = image[..., 0].astype(np.float64) / 255.0
    top = (1 - shot.scale) * shot.y_shift

    def at(fy: float, fx: float = 0.0) -> float:  # pixel value at figure coordinates (nearest pixel)
        row = int((top + fy * shot.scale) * height)
        col = int((0.5 + fx * shot.scale * height / width) * width)
        return float(grey[row, col])

    tolerance = 1.5 / 255 + SHADING * 0.05  # rounding, and the limb shading within 0.22 of the part's axis
    assert at(look.head_ry * 1.4) == pytest.approx(SKIN_TEMPERATURE, abs=tolerance)  # the face, below the hair
    torso_y = 0.5 * (look.shoulder_y + look.hip_y)
    assert at(torso_y) == pytest.approx(float(absorbed_temperature(look.upper, CLOTHING)), abs=tolerance)
    t = (0.8 - look.hip_y) / (0.965 - look.hip_y)  # along the leg, from the hip to the ankle (ANKLE_Y)
    leg_x = look.waist_hw * 0.5 + t * shot.stride / 2
    assert at(0.8, leg_x) == pytest.approx(float(absorbed_temperature(look.lower, CLOTHING)), abs=tolerance)
    assert at(look.head_ry * 0.2) == pytest.approx(HAIR_TEMPERATURE, abs=tolerance)  # the top of the head
    background = absorbed_temperature(camera.bg_colours[0], BACKGROUND)
    assert grey[0, 0] == pytest.approx(float(background), abs=0.01)  # the gradient's first end, half a pixel in


def test_thermal_mapping_values():
    black, white = CLOTH_PALETTE[0], CLOTH_PALETTE[1]
    assert float(absorbed_temperature(np.ones(3), CLOTHING)) == pytest.approx(CLOTHING[0])
    assert float(absorbed_temperature(np.zeros(3), CARRIED)) == pytest.approx(CARRIED[0] + CARRIED[1])
    luma = float(black @ LUMA)
    assert float(absorbed_temperature(black, CLOTHING)) == pytest.approx(0.5 + 0.3 * (1 - luma))
    assert absorbed_temperature(black, CLOTHING) > absorbed_temperature(white, CLOTHING)  # dark runs warmer
    assert LUMA.sum() == pytest.approx(1.0)


def test_infrared_crops_have_no_colour_and_differ_from_visible_ones():
    for pid in (1, 2):
        infrared = render_synthped_crop(3, pid, 2, 0, (64, 32), infrared=True)
        assert (infrared[..., 0] == infrared[..., 1]).all() and (infrared[..., 1] == infrared[..., 2]).all()
        assert np.array_equal(infrared, render_synthped_crop(3, pid, 2, 0, (64, 32), infrared=True))
        visible = render_synthped_crop(3, pid, 2, 0, (64, 32))
        assert np.abs(visible.astype(int) - infrared.astype(int)).mean() > 10


def test_synthped_command_writes_captions_and_infrared_cameras(tmp_path):
    from pixelfade_fast import cli
    from pixelfade_fast.data.captions import read_captions
    from pixelfade_fast.data.synthped import read_modalities

    out = tmp_path / "s"
    assert cli.main(["synthped", str(out), "--train-ids", "1", "--test-ids", "2", "--images-per-cam", "1",
                     "--cams", "2", "--size", "32", "16", "--infrared-cams", "1", "--captions", "2"]) == 0
    assert read_modalities(out)[1]  # one infrared camera id
    captions = read_captions(out / "query")
    assert captions and all(len(c) == 2 for c in captions.values())
