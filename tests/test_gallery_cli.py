"""pixelfade protect / merge / seed: outputs, run record, safe resume, names and files, clear errors."""
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from gallery_fixtures import SIZE, output_bytes, private_seed_file, run_cli, tiny_weights, write_images
from pixelfade_fast import cli
from pixelfade_fast.gallery import image_uid, merge_manifests, read_run_record
from pixelfade_fast.gallery.errors import GalleryError
from pixelfade_fast.gallery.manifest import Manifest

SEED = 0x1234567890ABCDEF << 192 | 0x5EED  # a contract-2 seed (256 bits)
NAMES = ["a.jpg", "b.png", "cam1/c.bmp", "cam1/d.JPG", "e.png"]


@pytest.fixture()
def gallery(tmp_path):
    root = tmp_path / "in"
    write_images(root, NAMES)
    (root / "cam1" / "broken.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    seed_file = private_seed_file(tmp_path / "seed", SEED)
    return root, weights, seed_file


def model_args(weights):
    return ["--model", f"tiny_cnn:{weights}"]


def test_outputs_manifest_and_run_record(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file) == 1  # one unreadable input
    captured = capsys.readouterr()
    assert "broken.png" in captured.err
    assert "protected 5 images" in captured.out and "images/s" in captured.out
    entries = Manifest(out / "manifest.jsonl").read()
    assert sorted(e.path for e in entries) == sorted(NAMES + ["cam1/broken.png"])
    for entry in entries:
        assert entry.uid == image_uid(entry.path)
        if entry.status == "failed":
            assert entry.path == "cam1/broken.png" and entry.reason
            continue
        image = Image.open(out / entry.output)
        assert image.size == (SIZE[1], SIZE[0]) and image.mode == "RGB"
    record = read_run_record(out)
    assert record.input_size == list(SIZE) and record.batch_size == 2 and record.inputs == 6
    assert record.config["steps"] == 6 and record.backend == "reference" and record.seed_id
    # the seed appears in no output, in no spelling
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for spelling in (str(SEED), f"{SEED:x}", f"{SEED:#066x}", f"{SEED:064x}"[:16]):
                assert spelling.encode() not in data, path
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(gallery, tmp_path, umask, mode):
    root, weights, seed_file = gallery
    old = os.umask(umask)
    try:
        run_cli(root, tmp_path / "out", *model_args(weights), "--seed-file", seed_file)
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").rglob("*.png")}
    assert modes == {mode}


def test_resume_continues_and_redoes_a_lost_output(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    before = output_bytes(out)
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file) == 2  # no --resume
    assert "--resume" in capsys.readouterr().err
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n")  # the run stopped after three images
    (out / "e.png").unlink()
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume") in (0, 1)
    assert output_bytes(out) == before
    paths = [e.path for e in Manifest(out / "manifest.jsonl").read()]
    assert sorted(paths) == sorted(NAMES + ["cam1/broken.png"])  # each input exactly once


@pytest.mark.parametrize("change, message", [
    (["--steps", "8"], "config.steps: 6 then, 8 now"),
    (["--input-size", "32", "16"], "input_size"),
    (["--batch-size", "3"], "batch_size: 2 then, 3 now"),
    (["--keep-suffix"], "names"),
    (["--epsilon", "0.05"], "config.epsilon"),
    (["--no-fold-batchnorm"], "acceleration.fold_batchnorm"),
])
def test_resume_refuses_another_run(gallery, tmp_path, capsys, change, message):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume", *change) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in out.rglob("*")) == before


def test_resume_refuses_another_model_or_seed_file(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    other_weights = tiny_weights(tmp_path / "other.safetensors", seed=1)
    assert run_cli(root, out, *model_args(other_weights), "--seed-file", seed_file, "--resume") == 2
    assert "model weights" in capsys.readouterr().err
    # the same secret in another (private) file: still another file
    other_seed = private_seed_file(tmp_path / "other_seed", SEED)
    assert run_cli(root, out, *model_args(weights), "--seed-file", other_seed, "--resume") == 2
    assert "seed file" in capsys.readouterr().err
    assert run_cli(root, out, *model_args(weights), "--resume") == 2
    assert "needs the run's seed file" in capsys.readouterr().err


def test_a_run_without_seed_file_cannot_be_resumed(gallery, tmp_path, capsys):
    root, weights, _ = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights))
    assert "cannot be resumed" in capsys.readouterr().err
    assert run_cli(root, out, *model_args(weights), "--resume", "--seed-file", tmp_path / "seed") == 2
    assert "no --seed-file" in capsys.readouterr().err


def test_a_missing_seed_file_is_created_private_and_resumable(gallery, tmp_path):
    root, weights, _ = gallery
    seed_file = tmp_path / "new_secret"
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    text = seed_file.read_text()
    assert "seed 0x" in text and read_run_record(out).seed_id in text
    (out / "a.png").unlink()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(line for line in lines if '"a.jpg"' not in line) + "\n")
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume") == 0
    assert (out / "a.png").exists()


def test_a_seed_file_without_id_gets_one(gallery, tmp_path):
    root, weights, seed_file = gallery
    mode = stat.S_IMODE(seed_file.stat().st_mode)
    run_cli(root, tmp_path / "out", *model_args(weights), "--seed-file", seed_file)
    text = seed_file.read_text()
    assert f"contract 2\nseed {SEED:#066x}" in text and f"id {read_run_record(tmp_path / 'out').seed_id}" in text
    assert stat.S_IMODE(seed_file.stat().st_mode) == mode


@pytest.mark.parametrize("content, message", [("hello", "is not an integer"), ("", "is empty"),
                                              ("1.5", "is not an integer"), ("-3", "must lie in"),
                                              ("seed 12\nid xyz", "32 lowercase hex")])
def test_bad_seed_files(gallery, tmp_path, capsys, content, message):
    root, weights, seed_file = gallery
    seed_file.write_text(content)
    out = tmp_path / "out"
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # nothing is created when a run cannot start


def test_seed_command_creates_and_never_overwrites(tmp_path, capsys):
    target = tmp_path / "s"
    assert cli.main(["seed", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.read_text()
    assert cli.main(["seed", str(target)]) == 2
    assert "never overwritten" in capsys.readouterr().err and target.read_text() == before


def test_inputs_sharing_an_output_name(tmp_path, capsys):
    root = tmp_path / "in"
    write_images(root, ["x.jpg", "x.png", "y.png"])
    weights = tiny_weights(tmp_path / "w.safetensors")
    out = tmp_path / "out"
    assert run_cli(root, out, *model_args(weights)) == 2
    assert "x.jpg and x.png -> x.png" in capsys.readouterr().err and not out.exists()
    assert run_cli(root, out, *model_args(weights), "--keep-suffix") == 0
    assert sorted(output_bytes(out)) == ["x.jpg.png", "x.png.png", "y.png.png"]


def test_overlapping_folders_are_refused(gallery, tmp_path, capsys):
    root, weights, _ = gallery
    for out, message in [(root, "must differ"), (root / "protected", "lies inside the input folder"),
                         (tmp_path, "lies inside the output folder")]:
        assert run_cli(root, out, *model_args(weights)) == 2
        assert message in capsys.readouterr().err
    assert not (root / "protected").exists()


def test_symlink_policy(tmp_path, capsys):
    root, outside = tmp_path / "in", tmp_path / "elsewhere"
    write_images(root, ["a.png", "sub/b.png"])
    write_images(outside, ["secret.png", "d/e.png"], seed=1)
    (root / "inside_link.png").symlink_to(root / "a.png")
    (root / "outside_link.png").symlink_to(outside / "secret.png")
    (root / "linked_folder").symlink_to(outside / "d")
    (root / "dangling.png").symlink_to(tmp_path / "nothing.png")
    out = tmp_path / "out"
    assert run_cli(root, out, *model_args(tiny_weights(tmp_path / "w.safetensors"))) == 0
    err = capsys.readouterr().err
    assert sorted(output_bytes(out)) == ["a.png", "inside_link.png", "sub/b.png"]
    assert "outside_link.png: symlink to a file outside the input folder" in err
    assert "linked_folder: symlinked folder (not followed)" in err
    assert "dangling.png: symlink to a file outside the input folder" in err or "dangling.png: broken" in err


def test_webp_and_tiff_are_read_and_others_reported(tmp_path, capsys):
    root = tmp_path / "in"
    write_images(root, ["a.webp", "b.tif", "c.tiff"])
    Image.fromarray(np.zeros((80, 40, 3), np.uint8)).save(root / "d.gif")
    Image.fromarray((np.arange(80 * 40).reshape(80, 40) * 20).astype(np.uint16)).save(root / "e16.tif")
    out = tmp_path / "out"
    assert run_cli(root, out, *model_args(tiny_weights(tmp_path / "w.safetensors"))) == 0
    assert sorted(output_bytes(out)) == ["a.png", "b.png", "c.png", "e16.png"]
    assert "d.gif: .gif images are not read" in capsys.readouterr().err


def test_a_cut_last_manifest_line_is_repaired(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    before = output_bytes(out)
    text = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(text[: len(text) - 25])  # power loss in the middle of the last line
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume") == 0
    assert "cut short" in capsys.readouterr().err
    paths = [e.path for e in Manifest(out / "manifest.jsonl").read()]
    assert sorted(paths) == sorted(NAMES + ["cam1/broken.png"])
    assert output_bytes(out) == before


def test_a_wrong_manifest_line_is_refused_by_name(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    with open(out / "manifest.jsonl", "a") as stream:
        stream.write(json.dumps({"path": "z.png", "status": "protected"}) + "\n")
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume") == 2
    err = capsys.readouterr().err
    assert "manifest.jsonl line 7: wrong fields" in err and "Traceback" not in err


def _sharded_run(root, weights, seed_file, out, monkeypatch):
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        run_cli(root, out, *model_args(weights), "--seed-file", seed_file)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")


def test_merge_joins_ranks_and_validates_every_line(gallery, tmp_path, monkeypatch):
    root, weights, seed_file = gallery
    run_cli(root, tmp_path / "warm", *model_args(weights), "--seed-file", seed_file)  # gives the file its id
    out = tmp_path / "sharded"
    _sharded_run(root, weights, seed_file, out, monkeypatch)
    rank0 = out / "manifest.rank0.jsonl"
    good = rank0.read_text()
    bad_lines = [json.dumps({"path": "q.png"}) + "\n",
                 good.splitlines()[0].replace('"path": "', '"path": "../') + "\n",
                 good.splitlines()[0] + "\n"]
    for bad, message in zip(bad_lines, ["wrong fields", "not a relative path", "listed twice"]):
        rank0.write_text(good + bad)
        with pytest.raises(GalleryError, match=message):
            merge_manifests(out)
    rank0.write_text("".join(good.splitlines(keepends=True)[1:]))  # one input missing
    with pytest.raises(GalleryError, match="5 of the run's 6 inputs"):
        merge_manifests(out)
    rank0.write_text(good)
    merged = merge_manifests(out)
    assert merged.inputs == 6 and merged.ranks == 2 and not list(out.glob("manifest.rank*"))
    assert sorted(e.path for e in Manifest(merged.manifest).read()) == sorted(NAMES + ["cam1/broken.png"])
    assert output_bytes(out) == output_bytes(tmp_path / "warm")  # whole batches per rank: the same bits


def test_torchrun_needs_a_seed_file_with_an_id(gallery, tmp_path, monkeypatch, capsys):
    root, weights, seed_file = gallery
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_cli(root, tmp_path / "o", *model_args(weights), "--seed-file", seed_file) == 2  # no id line yet
    assert "pixelfade seed" in capsys.readouterr().err
    assert run_cli(root, tmp_path / "o", *model_args(weights)) == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "must be at least 1"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--device", "tpu"], "is not a device"),
    (["--model", "resnet9000"], "is not a zoo name"),
    (["--model", "osnet_x1_0"], "no bundled weights for osnet_x1_0"),
    (["--model", "tiny_cnn:/nonexistent.pth"], "not found"),
    (["--model", "missing_module_xyz:build"], "cannot import"),
    (["--epsilon", "-1"], "epsilon"),
])
def test_clear_errors_and_nothing_written(gallery, tmp_path, capsys, args, message):
    root, weights, _ = gallery
    out = tmp_path / "o"
    code = run_cli(root, out, *model_args(weights), "--no-progress", *args, fast=False)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_missing_input_folder_and_unusable_backend(gallery, tmp_path, capsys, monkeypatch):
    root, weights, _ = gallery
    assert run_cli(tmp_path / "missing", tmp_path / "o", *model_args(weights)) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.setenv("PIXELFADE_BACKEND", "warp-drive")
    assert cli.main(["protect", str(root), str(tmp_path / "o"), *model_args(weights), "--device", "cpu",
                     "--input-size", "64", "32", "--no-progress"]) == 2
    assert "unknown backend" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_any_callable_module_is_a_model(gallery, tmp_path):
    root, _, _ = gallery
    out = tmp_path / "out"
    assert run_cli(root, out, "--model", "engine_models:SmallReIDNet") == 1  # broken.png
    assert read_run_record(out).model_id == "callable:engine_models:SmallReIDNet"
    assert len(output_bytes(out)) == 5


def test_an_onnx_export_is_a_model(gallery, tmp_path):
    from pixelfade_fast.models import build_model
    from pixelfade_fast.models.onnx import export_onnx

    root, weights, _ = gallery
    model = build_model("tiny_cnn", pretrained_path=weights, input_size=SIZE)
    onnx_file = tmp_path / "tiny.onnx"
    export_onnx(model, onnx_file, opset=17, input_size=SIZE)
    out = tmp_path / "out"
    assert run_cli(root, out, "--model", onnx_file) == 1  # broken.png
    record = read_run_record(out)
    assert record.model_id == "onnx:tiny.onnx" and record.input_size == list(SIZE)
    assert len(output_bytes(out)) == 5
    # --weights FILE.onnx is the same model
    assert run_cli(root, tmp_path / "out2", "--model", "tiny_cnn", "--weights", onnx_file) == 1
    assert read_run_record(tmp_path / "out2").model_digest == record.model_digest
    # both spellings record the file's absolute path, which refine loads when --model is not given
    assert record.model_spec == read_run_record(tmp_path / "out2").model_spec == str(onnx_file.resolve())


def test_a_torchreid_checkpoint_is_a_model(gallery, tmp_path):
    import torch

    from pixelfade_fast.models import build_model

    root, _, _ = gallery
    model = build_model("tiny_cnn", seed=3, input_size=SIZE)
    checkpoint = tmp_path / "model.pth.tar"
    state = {f"module.{k}": v for k, v in model.backbone.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 60, "rank1": 0.5}, checkpoint)
    out = tmp_path / "out"
    assert run_cli(root, out, "--model", f"tiny_cnn:{checkpoint}", "--mean", "0.5", "0.5", "0.5") == 1
    record = read_run_record(out)
    assert record.model_id == "tiny_cnn:model.pth.tar" and record.mean == [0.5, 0.5, 0.5]
    assert record.std == [0.229, 0.224, 0.225]  # torchreid's default (ImageNet) when neither flag nor file says


def test_refine_gives_the_missed_images_more_steps(gallery, tmp_path, capsys):
    root, weights, seed_file = gallery
    out = tmp_path / "out"
    # a tight absolute ε and no finish steps: most images miss it, 40 more steps bring some below it
    run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--epsilon", "0.00002", "--epsilon-scale",
            "absolute", "--finish-steps", "0")
    before = {e.path: e for e in Manifest(out / "manifest.jsonl").read()}
    missed = [p for p, e in before.items() if e.status == "protected" and not e.met_epsilon]
    assert missed, "the test needs images that missed ε"
    untouched = {p: (out / e.output).read_bytes() for p, e in before.items() if e.status == "protected"
                 and e.met_epsilon}
    capsys.readouterr()
    assert cli.main(["refine", str(root), str(out), *model_args(weights), "--steps", "40", "--device", "cpu",
                     "--backend", "reference", "--input-size", *map(str, SIZE)]) == 0
    assert "refined" in capsys.readouterr().out
    after = {e.path: e for e in Manifest(out / "manifest.jsonl").read()}
    assert set(after) == set(before)
    for path in missed:
        assert after[path].final_loss <= before[path].final_loss
    improved = [p for p in missed if after[p].final_loss < before[p].final_loss]
    assert improved and all(after[p].refine_steps == 40 for p in improved)
    assert sum(after[p].met_epsilon for p in missed) > 0
    assert all((out / before[p].output).read_bytes() == data for p, data in untouched.items())
    # the loss in the manifest is the loss of the PNG on disk
    from pixelfade_fast.data import load_image
    from pixelfade_fast.engine import per_image_loss
    from pixelfade_fast.models import build_model

    model = build_model("tiny_cnn", pretrained_path=weights, input_size=SIZE)
    path = improved[0]
    with __import__("torch").no_grad():
        pixels = load_image(out / after[path].output).unsqueeze(0)
        original = load_image(root / path, SIZE).unsqueeze(0)
        space = model.input_space
        loss = per_image_loss(model(space.normalise(pixels)), model(space.normalise(original)))
    assert abs(float(loss) - after[path].final_loss) < 1e-4
    # another model is refused
    other = tiny_weights(tmp_path / "other.safetensors", seed=5)
    assert cli.main(["refine", str(root), str(out), *model_args(other), "--device", "cpu",
                     "--input-size", *map(str, SIZE)]) == 2
    assert "needs the run's model" in capsys.readouterr().err


def test_a_failed_write_is_an_error_message_and_nothing_is_lost(gallery, tmp_path, capsys, monkeypatch):
    from pixelfade_fast.gallery import image_io

    root, weights, seed_file = gallery
    out = tmp_path / "out"
    real_write = image_io.write_image_atomic
    written = []

    def full_disk(array, path, mode, storage):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        file = real_write(array, path, mode, storage)
        written.append(path)
        return file

    monkeypatch.setattr(image_io, "write_image_atomic", full_disk)
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--io-workers", "1") == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "--resume" in err and "Traceback" not in err
    listed = {e.output for e in Manifest(out / "manifest.jsonl").read() if e.status == "protected"}
    assert listed <= {p.relative_to(out).as_posix() for p in written}  # every listed image is on disk
    monkeypatch.setattr(image_io, "write_image_atomic", real_write)
    assert run_cli(root, out, *model_args(weights), "--seed-file", seed_file, "--resume") in (0, 1)
    assert len(Manifest(out / "manifest.jsonl").read()) == len(NAMES) + 1
