"""Dataset readers, image loading and SynthPed, on tiny fake datasets written into tmp_path."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelfade_fast.data import (DatasetNotFoundError, Record, generate_synthped, load_image, load_images,
                                 parse_market_name, read_csv_dataset, read_cuhk01, read_cuhk03, read_market1501,
                                 read_msmt17, render_synthped_crop)

REAL_CUHK01 = Path(os.environ.get("PIXELFADE_CUHK01", Path(__file__).resolve().parents[2] / "shared/data/cuhk01"))


def _write(path: Path, size=(8, 4), value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), (value, value, value)).save(path)
    return path


def _names(records):
    return sorted(Path(r.path).name for r in records)


# ---------------------------------------------------------------- Market-1501

def _fake_market(root: Path):
    for name in ("0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c6s2_001234_02.jpg",
                 "-1_c1s1_000401_03.jpg"):
        _write(root / "bounding_box_train" / name)
    for name in ("0010_c1s1_000100_00.jpg", "0011_c3s1_000200_00.jpg", "-1_c2s1_000300_00.jpg"):
        _write(root / "query" / name)
    for name in ("0010_c2s1_000150_00.jpg", "0011_c1s1_000250_00.jpg", "0000_c4s1_000000_01.jpg",
                 "-1_c5s1_000050_00.jpg"):
        _write(root / "bounding_box_test" / name)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")


def test_market_reader(tmp_path):
    _fake_market(tmp_path)
    split = read_market1501(tmp_path)
    assert {(r.pid, r.camid) for r in split.train} == {(2, 0), (2, 1), (7, 5)}  # junk dropped, camid 0-based
    assert {(r.pid, r.camid) for r in split.query} == {(10, 0), (11, 2)}
    assert {(r.pid, r.camid) for r in split.gallery} == {(10, 1), (11, 0), (0, 3), (-1, 4)}  # 0 and -1 kept
    assert all(Path(r.path).is_file() for r in split.train + split.query + split.gallery)
    assert split.pids("gallery") == {10, 11, 0, -1} and split.camids("query") == {0, 2}


def test_market_name_parsing():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 0)
    assert parse_market_name("-1_c6s4_001234_00.png") == (-1, 5)
    for bad in ("0002_1s1_000451_03.jpg", "abc_c1s1_000451_03.jpg", "0002_c0s1_000451_03.jpg"):
        with pytest.raises(ValueError, match="0002|abc"):
            parse_market_name(bad)


def test_market_errors_name_folder_and_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="bounding_box_train.*Expected layout") as info:
        read_market1501(tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    _fake_market(tmp_path)
    for path in (tmp_path / "query").iterdir():
        path.unlink()
    with pytest.raises(DatasetNotFoundError, match="no images found in .*query"):
        read_market1501(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        read_market1501(tmp_path / "nowhere")


# ---------------------------------------------------------------- MSMT17

def test_msmt17_reader(tmp_path):
    train = ["0000/0000_000_01_0303morning_0015_0.jpg 0", "0001/0001_004_15_0303noon_0100_1.jpg 1"]
    val = ["0002/0002_000_07_0304morning_0002_0.jpg 2"]
    query = ["0000/0000_000_03_0113morning_0001_0.jpg 0"]
    gallery = ["0000/0000_001_11_0113noon_0005_1.jpg 0", "0001/0001_000_02_0113noon_0006_0.jpg 1"]
    for name, lines in (("list_train", train), ("list_val", val), ("list_query", query), ("list_gallery", gallery)):
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    split = read_msmt17(tmp_path)
    assert [(r.pid, r.camid) for r in split.train] == [(0, 0), (1, 14), (2, 6)]
    assert split.train[0].path == str(tmp_path / "train/0000/0000_000_01_0303morning_0015_0.jpg")
    assert [(r.pid, r.camid) for r in split.query] == [(0, 2)]
    assert split.query[0].path.startswith(str(tmp_path / "test"))
    assert [(r.pid, r.camid) for r in split.gallery] == [(0, 10), (1, 1)]
    assert len(read_msmt17(tmp_path, include_val=False).train) == 2

    (tmp_path / "list_query.txt").write_text("0000/0000_000_03_x.jpg\n")
    with pytest.raises(ValueError, match=r"list_query.txt:1"):
        read_msmt17(tmp_path)
    (tmp_path / "list_gallery.txt").unlink()
    (tmp_path / "list_query.txt").write_text("\n".join(query))
    with pytest.raises(DatasetNotFoundError, match="list_gallery.txt"):
        read_msmt17(tmp_path)


# ---------------------------------------------------------------- CUHK03

def test_cuhk03_reader(tmp_path):
    for pid in range(6):
        for k in (0, 3, 5, 9):
            _write(tmp_path / "detected" / ("train" if pid < 3 else "test") / f"{pid:04d}_{k:02d}.jpg")
    _write(tmp_path / "labeled" / "0099_00.jpg")  # only the detected crops are read
    split = read_cuhk03(tmp_path, num_train_ids=4)
    assert split.pids("train") == {0, 1, 2, 3} and len(split.train) == 16
    assert split.pids("query") == split.pids("gallery") == {4, 5}
    assert split.camids("query") == {0} and split.camids("gallery") == {1}
    assert _names(split.query) == ["0004_00.jpg", "0004_03.jpg", "0005_00.jpg", "0005_03.jpg"]
    with pytest.raises(ValueError, match="num_train_ids"):
        read_cuhk03(tmp_path, num_train_ids=6)
    _write(tmp_path / "detected" / "0001_12.jpg")
    with pytest.raises(ValueError, match="0..9"):
        read_cuhk03(tmp_path, num_train_ids=4)


# ---------------------------------------------------------------- CUHK01

def _fake_cuhk01(root: Path, num_ids: int):
    for pid in range(1, num_ids + 1):
        for idx in range(1, 5):
            _write(root / "campus" / f"{pid:04d}{idx:03d}.png")


def test_cuhk01_reader_split(tmp_path):
    _fake_cuhk01(tmp_path, 10)
    split = read_cuhk01(tmp_path, num_train_ids=4, seed=3)
    train_ids, test_ids = split.pids("train"), split.pids("query")
    assert len(train_ids) == 4 and len(test_ids) == 6 and not train_ids & test_ids
    assert train_ids | test_ids == set(range(1, 11))
    assert len(split.train) == 16
    assert _names(split.query) == sorted(f"{pid:04d}001.png" for pid in test_ids)  # one idx-1 image per id
    assert _names(split.gallery) == sorted(f"{pid:04d}{i:03d}.png" for pid in test_ids for i in (3, 4))
    assert split.camids("query") == {0} and split.camids("gallery") == {1}
    assert read_cuhk01(tmp_path, num_train_ids=4, seed=3) == split
    assert any(read_cuhk01(tmp_path, num_train_ids=4, seed=s).pids("train") != train_ids for s in (4, 5, 6))


def test_cuhk01_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="campus.*Expected layout"):
        read_cuhk01(tmp_path)
    _fake_cuhk01(tmp_path, 3)
    with pytest.raises(ValueError, match="num_train_ids must be between 1 and 2"):
        read_cuhk01(tmp_path)  # default 485 needs the full release
    _write(tmp_path / "campus" / "0001005.png")
    with pytest.raises(ValueError, match="001..004"):
        read_cuhk01(tmp_path, num_train_ids=1)


@pytest.mark.skipif(not (REAL_CUHK01 / "campus").is_dir(), reason="real CUHK01 not present")
def test_real_cuhk01_protocol_counts():
    split = read_cuhk01(REAL_CUHK01)
    assert len(split.pids("train")) == 485 and len(split.pids("query")) == 486
    assert not split.pids("train") & (split.pids("query") | split.pids("gallery"))
    assert split.pids("query") == split.pids("gallery")
    assert (len(split.train), len(split.query), len(split.gallery)) == (1940, 486, 972)
    assert read_cuhk01(REAL_CUHK01, seed=1).pids("train") != split.pids("train")
    image = load_image(split.query[0].path)
    assert image.shape == (3, 160, 60) and 0.0 <= image.min() and image.max() <= 1.0


# ---------------------------------------------------------------- CSV

def test_csv_reader(tmp_path):
    absolute = _write(tmp_path / "elsewhere" / "x.png")
    (tmp_path / "labels.csv").write_text(
        "path,pid,camid,split,note\n"
        "imgs/a.png,1,0,train,hello\n"
        f"{absolute},2,1,query,\n"
        "imgs/c.png,2,0,Gallery,\n"
        "imgs/d.png,0,2,gallery,\n")
    split = read_csv_dataset(tmp_path / "labels.csv")
    assert split.train == [Record(str(tmp_path / "imgs/a.png"), 1, 0)]
    assert split.query == [Record(str(absolute), 2, 1)]
    assert [(r.pid, r.camid) for r in split.gallery] == [(2, 0), (0, 2)]
    other = read_csv_dataset(tmp_path / "labels.csv", image_root=tmp_path / "elsewhere")
    assert other.train[0].path == str(tmp_path / "elsewhere/imgs/a.png")


@pytest.mark.parametrize("body,message", [
    ("path,pid,split\na.png,1,train\n", "missing column.*camid"),
    ("path,pid,camid,split\na.png,1,0,val\n", r"labels.csv:2: split must be"),
    ("path,pid,camid,split\na.png,one,0,query\n", r"labels.csv:2: column 'pid'"),
    ("path,pid,camid,split\na.png,1,-1,query\n", "camid must be >= 0"),
    ("path,pid,camid,split\na.png,1,0,train\n", "no images found"),
])
def test_csv_errors(tmp_path, body, message):
    (tmp_path / "labels.csv").write_text(body)
    with pytest.raises((ValueError, DatasetNotFoundError), match=message):
        read_csv_dataset(tmp_path / "labels.csv")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="labels.csv"):
        read_csv_dataset(tmp_path / "labels.csv")


# ---------------------------------------------------------------- images

def test_load_image_layout_and_values(tmp_path):
    pixels = np.arange(3 * 2 * 3, dtype=np.uint8).reshape(3, 2, 3) * 10  # H=3, W=2
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.dtype == torch.float32 and image.shape == (3, 3, 2)
    for y in range(3):
        for x in range(2):
            for c in range(3):
                assert image[c, y, x].item() == pytest.approx(pixels[y, x, c] / 255.0)


def test_load_image_converts_modes_and_resizes(tmp_path):
    Image.new("L", (5, 7), 128).save(tmp_path / "grey.png")
    Image.new("RGBA", (5, 7), (255, 0, 0, 10)).save(tmp_path / "rgba.png")
    grey, rgba = load_image(tmp_path / "grey.png"), load_image(tmp_path / "rgba.png", size=(14, 6))
    assert grey.shape == (3, 7, 5) and torch.all(grey == 128 / 255)
    assert rgba.shape == (3, 14, 6)
    assert torch.all(rgba[0] == 1.0) and torch.all(rgba[1:] == 0.0)  # alpha dropped, constant stays constant
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    expected = np.asarray(Image.open(tmp_path / "noise.png").resize((8, 16), Image.BILINEAR)) / 255.0
    resized = load_image(tmp_path / "noise.png", size=(16, 8))
    assert np.allclose(resized.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="size"):
        load_image(tmp_path / "noise.png", size=(16,))


def test_load_images_batch(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", size=(6, 4), value=20 * i) for i in range(5)]
    batch = load_images(paths)
    assert batch.shape == (5, 3, 6, 4)
    assert torch.allclose(batch[:, 0, 0, 0], torch.tensor([20 * i / 255 for i in range(5)]))
    assert torch.equal(load_images(paths, num_workers=2), batch)
    odd = _write(tmp_path / "odd.png", size=(5, 4))
    with pytest.raises(ValueError, match="different sizes"):
        load_images(paths + [odd])
    assert load_images(paths + [odd], size=(6, 4)).shape == (6, 3, 6, 4)
    with pytest.raises(ValueError, match="empty"):
        load_images([])


def test_exif_orientation_is_applied_on_load(tmp_path):
    """A JPEG stored sideways with EXIF Orientation=6 ("rotate 90° clockwise to display") loads upright, through
    the loader the datasets use (load_image/load_images) and the one the gallery command uses (ImageReader)."""
    from pixelfade_fast.gallery.image_io import ImageReader

    stored = np.zeros((16, 32, 3), dtype=np.uint8)  # H=16, W=32, four solid quadrants survive JPEG
    stored[:8, :16], stored[:8, 16:], stored[8:, :16], stored[8:, 16:] = (0, 200, 0), (0, 0, 220), (210, 0, 0), 250
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    Image.fromarray(stored).save(tmp_path / "side.jpg", quality=95, subsampling=0, exif=exif)
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95, subsampling=0)
    upright = torch.from_numpy(np.rot90(stored, k=-1).copy()).permute(2, 0, 1).float() / 255  # clockwise
    loaded = load_image(tmp_path / "side.jpg")
    assert loaded.shape == (3, 32, 16)
    assert (loaded - upright).abs().mean() < 0.02  # JPEG error only; any other rotation or a flip: about 0.4
    for rotation in (0, 1, 2):
        other = torch.from_numpy(np.rot90(stored, k=rotation).copy()).permute(2, 0, 1).float() / 255
        assert other.shape != loaded.shape or (loaded - other).abs().mean() > 0.2
    assert load_image(tmp_path / "plain.jpg").shape == (3, 16, 32)  # no tag: left as stored
    resized = load_image(tmp_path / "side.jpg", size=(64, 32))  # rotated first, then resized to (H, W)
    assert (resized[:, ::2, ::2] - upright).abs().mean() < 0.03
    assert torch.equal(load_images([tmp_path / "side.jpg"])[0], loaded)
    reader = ImageReader(tmp_path, (32, 16), workers=1)
    try:
        [item] = reader.take(0, ("side.jpg",))
    finally:
        reader.close()
    assert item.error is None and torch.equal(item.pixels, loaded)


# ---------------------------------------------------------------- SynthPed

SMALL = dict(num_ids_train=3, num_ids_test=2, images_per_id_per_cam=2, num_cams=3, size=(64, 32),
             num_distractors=2)


def _file_bytes(root: Path):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_synthped_layout_and_counts(tmp_path):
    split = generate_synthped(tmp_path, seed=0, **SMALL)
    assert (len(split.train), len(split.query), len(split.gallery)) == (3 * 3 * 2, 2 * 3, 2 * 3 * 2 + 2)
    assert split.pids("train") == {1, 2, 3}
    assert split.pids("query") == {4, 5} and split.pids("gallery") == {0, 4, 5}
    assert split.camids("train") == split.camids("query") == {0, 1, 2}
    assert read_market1501(tmp_path) == split
    assert load_image(split.gallery[0].path).shape == (3, 64, 32)
    query_names = {Path(r.path).name for r in split.query}
    assert not query_names & {Path(r.path).name for r in split.gallery}
    with pytest.raises(FileExistsError, match="already holds files"):
        generate_synthped(tmp_path, seed=0, **SMALL)


def test_synthped_is_deterministic_per_seed(tmp_path):
    generate_synthped(tmp_path / "a", seed=0, **SMALL)
    generate_synthped(tmp_path / "b", seed=0, num_workers=2, **SMALL)
    generate_synthped(tmp_path / "c", seed=1, **SMALL)
    a, b, c = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b"), _file_bytes(tmp_path / "c")
    assert a == b
    assert a.keys() - {k for k in a if "/0000_" in k} == c.keys() - {k for k in c if "/0000_" in k}
    assert all(a[k] != c[k] for k in a.keys() & c.keys())
    # The files hold exactly the rendered crop, and a crop does not depend on how many ids were generated.
    written = np.asarray(Image.open(tmp_path / "a/query/0005_c3s1_000002_00.png"))
    assert np.array_equal(written, render_synthped_crop(0, 5, 2, 0, (64, 32), query=True))
    generate_synthped(tmp_path / "d", seed=0, **{**SMALL, "num_ids_test": 4})
    d = _file_bytes(tmp_path / "d")
    assert all(d[k] == a[k] for k in a if "/0000_" not in k)


@pytest.mark.parametrize("seed", [0, 1])
def test_synthped_identity_is_shared_and_cameras_are_a_strong_nuisance(seed):
    """Body-centred colour stripes, averaged over 6 cameras: within a camera, two shots of one person are
    closer than two people (identity signal); the same person across cameras is much farther than within
    a camera (nuisance). Over seeds 0-9 the ratios ranged 0.41-0.77 and 2.2-7.0."""
    ids, cams, shots = 20, 6, 2
    crops = np.stack([[[render_synthped_crop(seed, pid, cam, k, (64, 32)) for k in range(shots)]
                       for cam in range(cams)] for pid in range(1, ids + 1)]).astype(np.float32) / 255.0
    stripes = crops[..., 8:24, :].reshape(ids, cams, shots, 8, 8, 16, 3).mean((4, 5))
    feat = (stripes / (stripes.sum(-1, keepdims=True) + 1e-3)).reshape(ids, cams, shots, -1)

    def dist(a, b):
        return ((a - b) ** 2).sum(-1).mean()

    same_id_same_cam = dist(feat[:, :, 0], feat[:, :, 1])
    other_id_same_cam = np.mean([dist(feat[i, :, 0], feat[j, :, 0])
                                 for i in range(ids) for j in range(ids) if i != j])
    same_id_other_cam = np.mean([dist(feat[:, a, 0], feat[:, b, 0])
                                 for a in range(cams) for b in range(cams) if a != b])
    assert same_id_same_cam < 0.85 * other_id_same_cam
    assert same_id_other_cam > 1.8 * same_id_same_cam


def test_synthped_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_cams must be an int >= 2"):
        generate_synthped(tmp_path, num_cams=1)
    with pytest.raises(ValueError, match="size"):
        generate_synthped(tmp_path, size=(8, 4))
    with pytest.raises(ValueError, match="image_format"):
        generate_synthped(tmp_path, image_format="gif")
    with pytest.raises(ValueError, match="pid must be >= 1"):
        render_synthped_crop(0, 0, 0, 0)
