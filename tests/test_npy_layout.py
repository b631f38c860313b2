"""--npy-out / write_img_npy: a gallery run in the authors' img_npy/ layout (issue 24)."""
import os

import numpy as np
import pytest

from gallery_fixtures import SIZE, private_seed_file, run_cli, tiny_weights, write_images
from pixelfade_fast.data import load_image
from pixelfade_fast.gallery import read_run_record, write_img_npy
from pixelfade_fast.gallery import run as gallery_run
from pixelfade_fast.gallery.errors import GalleryError
from pixelfade_fast.gallery.manifest import Manifest
from pixelfade_fast.gallery.npy_layout import set_of
from pixelfade_fast.input_space import InputSpace

SEED = (0xC0FFEE << 200) | 0x24
TRAIN = ["bounding_box_train/0007_c1s1_000001_01.jpg", "bounding_box_train/0007_c2s1_000002_01.jpg",
         "bounding_box_train/0009_c1s1_000003_01.jpg"]
QUERY = ["query/0011_c1s1_000004_01.jpg", "query/0012_c2s1_000005_01.jpg"]
GALLERY = ["bounding_box_test/0011_c2s1_000006_01.jpg", "bounding_box_test/0012_c1s1_000007_01.jpg",
           "bounding_box_test/extra.png"]  # not a Market-1501 name


@pytest.fixture()
def market(tmp_path):
    root = tmp_path / "market"
    write_images(root, TRAIN + QUERY + GALLERY)
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    seed_file = private_seed_file(tmp_path / "seed", SEED)
    return root, ["--model", f"tiny_cnn:{weights}", "--seed-file", seed_file]


def npy_files(folder):
    return {p.name: np.load(p) for p in sorted((folder / "img_npy").iterdir())}


def attack_pairs(folder, which):
    """The (clean, protected) files their attack pairs: sorted names holding 'clean-<which>' / 'encry-<which>'
    and 'images', each pair's names equal but for that word (their check)."""
    names = sorted(os.listdir(folder / "img_npy"))
    pick = lambda kind: [n for n in names if f"{kind}-{which}" in n and "images" in n]  # noqa: E731
    pairs = list(zip(pick("clean"), pick("encry")))
    assert len(pick("clean")) == len(pick("encry"))
    assert all(clean.replace(f"clean-{which}", f"encry-{which}") == encry for clean, encry in pairs)
    return pairs


def test_the_train_set_is_the_top_train_folder():
    assert set_of("bounding_box_train/0001_c1s1_000001_01.jpg") == set_of("train/a.png") == "train"
    assert set_of("query/0001_c1s1_000001_01.jpg") == set_of("bounding_box_test/a.jpg") == "test"
    assert set_of("a.jpg") == set_of("cam1/train/a.jpg") == "test"


def test_npy_out_writes_the_layout_their_attack_reads(market, tmp_path):
    root, args = market
    out, npy = tmp_path / "out", tmp_path / "npy"
    (npy / "img_npy").mkdir(parents=True)
    np.save(npy / "img_npy" / "clean-test-9-images.npy", np.zeros(1))  # an older write's: replaced with the folder
    assert run_cli(root, out, *args, "--npy-out", npy) == 0
    files = npy_files(npy)
    # --batch-size 2 protects, the layout keeps their 20 per file: one file per set
    assert sorted(files) == ["clean-test-0-images.npy", "clean-train-0-images.npy", "encry-test-0-images.npy",
                             "encry-train-0-images.npy", "test-0-camids.npy", "test-0-ids.npy", "train-0-ids.npy"]
    assert files["test-0-ids.npy"].tolist() == [11, 12, 11, 12, -1]  # query first, then the gallery by name
    assert files["test-0-camids.npy"].tolist() == [0, 1, 1, 0, -1]
    assert files["train-0-ids.npy"].tolist() == [7, 7, 9]
    for array in files.values():
        assert array.dtype in (np.float32, np.int64)
    record = read_run_record(out)
    space = InputSpace(tuple(record.mean), tuple(record.std))
    outputs = {e.path: e.output for e in Manifest(out / "manifest.jsonl").read()}
    for which, names in (("train", TRAIN), ("test", QUERY + sorted(GALLERY))):
        assert attack_pairs(npy, which) == [(f"clean-{which}-0-images.npy", f"encry-{which}-0-images.npy")]
        clean, protected = files[f"clean-{which}-0-images.npy"], files[f"encry-{which}-0-images.npy"]
        assert clean.shape == protected.shape == (len(names), 3) + SIZE and clean.dtype == np.float32
        for row, name in enumerate(names):
            np.testing.assert_array_equal(clean[row], space.normalise(load_image(root / name, SIZE)[None])[0].numpy())
            np.testing.assert_array_equal(protected[row],
                                          space.normalise(load_image(out / outputs[name])[None])[0].numpy())
        assert np.abs(clean - protected).mean() > 0.1  # protected, not copied
    assert not list(npy.glob(".img_npy*"))  # no staging folder left

    again = write_img_npy(root, out, tmp_path / "from_python", batch_size=2)  # the same from Python
    assert again.images == {"test": 5, "train": 3} and again.files == 3 * 4 + 2 * 3
    python_files = npy_files(tmp_path / "from_python")
    np.testing.assert_array_equal(np.concatenate([python_files[f"encry-test-{k}-images.npy"] for k in range(3)]),
                                  files["encry-test-0-images.npy"])


def test_an_interrupted_run_writes_no_layout_and_its_resume_writes_the_whole_gallery(market, tmp_path, monkeypatch):
    root, args = market
    whole = tmp_path / "whole"
    assert run_cli(root, tmp_path / "out_whole", *args, "--npy-out", whole) == 0

    real_run_batch = gallery_run._run_batch
    calls = []

    def stop_at_the_third_batch(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run_batch(*a, **k)

    monkeypatch.setattr(gallery_run, "_run_batch", stop_at_the_third_batch)
    out, npy = tmp_path / "out", tmp_path / "npy"
    assert run_cli(root, out, *args, "--npy-out", npy) == 130
    assert not (npy / "img_npy").exists()
    monkeypatch.setattr(gallery_run, "_run_batch", real_run_batch)
    assert run_cli(root, out, *args, "--npy-out", npy, "--resume") == 0
    resumed, expected = npy_files(npy), npy_files(whole)
    assert sorted(resumed) == sorted(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(resumed[name], array)


def test_refused_before_anything_is_written(market, tmp_path, capsys):
    root, args = market
    npy = tmp_path / "npy"
    (npy / "img_npy").mkdir(parents=True)
    (npy / "img_npy" / "notes.txt").write_text("mine")
    assert run_cli(root, tmp_path / "out", *args, "--npy-out", npy) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "notes.txt" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert run_cli(root, tmp_path / "out", *args, "--npy-out", tmp_path / "missing" / "npy") == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_changed_output_is_refused(market, tmp_path):
    root, args = market
    out = tmp_path / "out"
    assert run_cli(root, out, *args) == 0
    entry = Manifest(out / "manifest.jsonl").read()[0]
    (out / entry.output).write_bytes((out / entry.output).read_bytes() + b"\0")
    with pytest.raises(GalleryError, match="not the file the run wrote"):
        write_img_npy(root, out, tmp_path / "npy")
    assert not (tmp_path / "npy" / "img_npy").exists() and not list((tmp_path / "npy").iterdir())
    with pytest.raises(GalleryError, match="holds no gallery run"):
        write_img_npy(root, tmp_path / "nothing", tmp_path / "npy")
