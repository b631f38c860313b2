"""pixelfade protect / merge: outputs, manifest, resume, unreadable inputs, sharding, and no seed on disk."""

import numpy as np
import pytest
from PIL import Image

from pixelfade_fast import cli
from pixelfade_fast.gallery import Shard, image_uid, merge_manifests, read_manifest
from pixelfade_fast.models import build_model, save_safetensors

SIZE = (64, 32)
FAST = ["--steps", "6", "--init-steps", "2", "--final-steps", "2", "--backend", "reference", "--device", "cpu",
        "--batch-size", "2", "--input-size", str(SIZE[0]), str(SIZE[1]), "--no-progress"]


@pytest.fixture()
def gallery(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "in"
    (root / "cam1").mkdir(parents=True)
    for name in ["a.jpg", "b.png", "cam1/c.bmp", "cam1/d.JPG", "e.png"]:
        Image.fromarray(rng.integers(0, 255, (80, 40, 3), dtype=np.uint8)).save(root / name)
    (root / "cam1" / "broken.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=0, input_size=SIZE), weights)
    seed_file = tmp_path / "seed"
    seed_file.write_text("0x1234567890abcdef")
    return root, weights, seed_file


def run(args):
    return cli.main(["protect", *map(str, args), *FAST])


def test_protect_writes_pngs_and_a_manifest_and_resumes(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    code = run([root, out, "--model", "tiny_cnn", "--weights", weights, "--seed-file", seed_file])
    assert code == 1  # one unreadable input: reported, the rest done
    assert "broken.png" in capsys.readouterr().err
    entries = read_manifest(out / "manifest.jsonl")
    assert sorted(e["path"] for e in entries) == ["a.jpg", "b.png", "cam1/c.bmp", "cam1/d.JPG", "e.png"]
    for entry in entries:
        png = out / entry["path"].rsplit(".", 1)[0]
        image = Image.open(png.with_suffix(".png"))
        assert image.size == (SIZE[1], SIZE[0]) and image.mode == "RGB"
        assert entry["uid"] == image_uid(entry["path"])
        assert set(entry) == {"path", "uid", "final_loss", "met_epsilon", "config_hash", "model_id"}
    text = (out / "manifest.jsonl").read_text()
    assert str(0x1234567890ABCDEF) not in text and "1234567890abcdef" not in text.lower()
    assert not list(out.rglob("*.tmp"))

    with pytest.raises(SystemExit, match="--resume"):
        run([root, out, "--model", "tiny_cnn", "--weights", weights, "--seed-file", seed_file])
    (out / "b.png").unlink()  # lost output: resume must redo it
    before = (out / "a.png").read_bytes()
    assert run([root, out, "--model", "tiny_cnn", "--weights", weights, "--seed-file", seed_file, "--resume"]) == 1
    assert (out / "b.png").exists() and (out / "a.png").read_bytes() == before
    assert "protected 1 images" in capsys.readouterr().out


def test_same_seed_gives_same_outputs_and_shards_merge(gallery, tmp_path, monkeypatch):
    root, weights, seed_file = gallery
    single = tmp_path / "single"
    run([root, single, "--model", "tiny_cnn", "--weights", weights, "--seed-file", seed_file])
    sharded = tmp_path / "sharded"
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        run([root, sharded, "--model", "tiny_cnn", "--weights", weights, "--seed-file", seed_file])
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    merge_manifests(sharded)
    merged = {e["path"]: e for e in read_manifest(sharded / "manifest.jsonl")}
    assert set(merged) == {e["path"] for e in read_manifest(single / "manifest.jsonl")}
    for path in merged:
        png = path.rsplit(".", 1)[0] + ".png"
        assert (sharded / png).read_bytes() == (single / png).read_bytes()


def test_shards_partition_the_uids():
    uids = [image_uid(f"img_{i}.jpg") for i in range(100)]
    owners = [[Shard(r, 3).owns(u) for r in range(3)] for u in uids]
    assert all(sum(row) == 1 for row in owners)


def test_clear_errors(gallery, tmp_path):
    root, weights, seed_file = gallery
    with pytest.raises(SystemExit, match="does not exist"):
        run([tmp_path / "missing", tmp_path / "o", "--model", "tiny_cnn", "--weights", weights])
    with pytest.raises(SystemExit, match="not found"):
        run([root, tmp_path / "o", "--model", "tiny_cnn", "--weights", tmp_path / "none.safetensors"])
    with pytest.raises(SystemExit, match="epsilon"):
        run([root, tmp_path / "o", "--model", "tiny_cnn", "--weights", weights, "--epsilon", "-1"])
    with pytest.raises(SystemExit, match="must differ"):
        run([root, root, "--model", "tiny_cnn", "--weights", weights])
