"""docs/gallery.md, claim by claim, each tried off the happy path: content-bound refine and resume, bits that say
what they depend on, runs recorded before either, and a one-line message (exit 2, nothing written) for every run
that cannot start. Every test named in docs/gallery.md exists (the last test), so the two cannot drift apart."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gallery_fixtures import (FAST, REPO, SIZE, cli_command, free_port, output_bytes, private_seed_file,
                              protect_as_ranks, run_cli, subprocess_env, tiny_weights, write_images)
from pixelfade_fast import cli
from pixelfade_fast.gallery import GallerySettings, merge_manifests, protect_folder, read_run_record
from pixelfade_fast.gallery.errors import GalleryError
from pixelfade_fast.gallery.manifest import Manifest
from pixelfade_fast.machine import usable_cpus

NAMES = ["a.png", "b.png", "c.png", "d.png", "e.png"]
# a tight absolute ε and no finish steps: most images miss it, so refine has work
MISS = ["--epsilon", "0.00002", "--epsilon-scale", "absolute", "--finish-steps", "0"]

RUN_SEED = 0x243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89  # fixed, so the bits are fixed


@pytest.fixture()
def run(tmp_path):
    """IN with five images, the tiny model, a seed file, and a function that runs a command on them."""
    root = tmp_path / "in"
    write_images(root, NAMES)
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    seed_file = private_seed_file(tmp_path / "seed", RUN_SEED)

    def protect(out, *extra, model=True):
        return run_cli(root, out, *(["--model", f"tiny_cnn:{weights}"] if model else []), "--seed-file", seed_file,
                       *map(str, extra))

    def refine(out, *extra, input_dir=None):
        try:
            return cli.main(["refine", str(input_dir or root), str(out), "--no-progress", *map(str, extra)])
        except SystemExit as stop:
            return int(stop.code)

    return root, weights, seed_file, protect, refine


def _one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def _listing(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# --- Content binding: refine (silent case 1) --------------------------------------------------------------------

def test_refine_refuses_other_images_under_the_runs_names(run, tmp_path, capsys):
    root, weights, seed_file, protect, refine = run
    out = tmp_path / "out"
    assert protect(out, *MISS) == 0
    missed = [e.path for e in Manifest(out / "manifest.jsonl").read() if not e.met_epsilon]
    assert missed, "the test needs images that missed ε"
    before = _listing(out)
    others = tmp_path / "others"
    write_images(others, NAMES, seed=7)  # other people, the run's file names
    capsys.readouterr()
    model = ["--model", f"tiny_cnn:{weights}", "--input-size", *SIZE]  # named, as a user of any version would
    assert refine(out, "--steps", "5", *model, input_dir=others) == 2
    _one_error_line(capsys.readouterr().err, "not the file the run protected", missed[0])
    assert _listing(out) == before  # nothing rewritten, no met_epsilon flipped
    # an IN that lacks an original: named, no FileNotFoundError
    (root / missed[0]).unlink()
    assert refine(out, "--steps", "5", *model) == 2
    _one_error_line(capsys.readouterr().err, "not under", missed[0])
    assert _listing(out) == before


def test_refine_refuses_a_damaged_png_to_continue(run, tmp_path, capsys):
    _, _, _, protect, refine = run
    out = tmp_path / "out"
    assert protect(out, *MISS) == 0
    missed = [e for e in Manifest(out / "manifest.jsonl").read() if not e.met_epsilon]
    path = out / missed[0].output
    path.write_bytes(path.read_bytes()[:100])  # truncated
    capsys.readouterr()
    assert refine(out, "--steps", "5") == 2
    _one_error_line(capsys.readouterr().err, "missing or damaged", "--resume")


def test_refine_defaults_to_the_runs_model_and_refuses_another(run, tmp_path, capsys):
    root, weights, _, protect, refine = run
    out = tmp_path / "out"
    assert protect(out, *MISS) == 0
    record = read_run_record(out)
    assert record.model_spec == f"tiny_cnn:{weights.resolve()}"  # the full path, not its basename
    before = {e.path: e for e in Manifest(out / "manifest.jsonl").read()}
    capsys.readouterr()
    assert refine(out, "--steps", "20") == 0  # no --model: the recorded one
    assert "refined" in capsys.readouterr().out
    after = {e.path: e for e in Manifest(out / "manifest.jsonl").read()}
    improved = [p for p in after if after[p].final_loss < before[p].final_loss]
    assert improved
    for path in improved:  # the manifest's digest is the new PNG's
        data = (out / after[path].output).read_bytes()
        assert after[path].output_size == len(data) and after[path].output_digest != before[path].output_digest
    other = tiny_weights(tmp_path / "other.safetensors", seed=5)
    assert refine(out, "--model", f"tiny_cnn:{other}") == 2
    _one_error_line(capsys.readouterr().err, "model weights", f"--model {record.model_spec}")


# --- Content binding: resume (silent case 2) --------------------------------------------------------------------

def test_resume_redoes_missing_and_damaged_outputs_with_the_same_bytes(run, tmp_path, capsys):
    _, _, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out) == 0
    before = output_bytes(out)
    lines = (out / "manifest.jsonl").read_text()
    (out / "a.png").unlink()
    (out / "b.png").write_bytes(before["b.png"][:100])  # truncated
    flipped = bytearray(before["d.png"])
    flipped[len(flipped) // 2] ^= 1  # same size, one bit changed
    (out / "d.png").write_bytes(bytes(flipped))
    capsys.readouterr()
    assert protect(out, "--resume") == 0
    captured = capsys.readouterr()
    assert output_bytes(out) == before
    assert (out / "manifest.jsonl").read_text() == lines  # no line repeated, none changed
    assert "a.png (missing)" in captured.err and "b.png" in captured.err and "d.png" in captured.err
    assert "3 redone" in captured.out
    # the summary adds up: batches {a,b}, {c,d}, {e}: two redone whole, one untouched
    assert "protected 4 images" in captured.out and "1 already done" in captured.out


def test_resume_removes_stale_temporary_files(run, tmp_path, capsys):
    _, _, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out) == 0
    stale = [out / ".a.png.k3j_x9Qa.tmp", out / ".manifest.jsonl.0aZ_b2c3.tmp", out / ".run.json.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"")
    (out / "mine.tmp").write_text("a user's file")  # not a temporary file of the run: kept
    capsys.readouterr()
    assert protect(out, "--resume") == 0
    assert not any(path.exists() for path in stale) and (out / "mine.tmp").exists()
    assert "removed 3 temporary files" in capsys.readouterr().err


def test_resume_names_the_inputs_added_and_removed(run, tmp_path, capsys):
    root, _, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out) == 0
    (root / "a.png").unlink()
    write_images(root, ["new.png"], seed=3)
    capsys.readouterr()
    assert protect(out, "--resume") == 2
    _one_error_line(capsys.readouterr().err, "input list changed", "no longer under IN: a.png",
                    "not protected yet (new, or not reached before the stop): new.png")


def test_resume_refuses_an_input_changed_under_its_name(run, tmp_path, capsys):
    root, _, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out) == 0
    (out / "a.png").unlink()  # its batch {a, b} is redone ...
    write_images(root, ["b.png"], seed=9)  # ... and b is another image now
    capsys.readouterr()
    assert protect(out, "--resume") == 2
    _one_error_line(capsys.readouterr().err, "input b.png changed since the run protected it")


# --- Bits that say what they depend on (silent case 3) ----------------------------------------------------------

def test_run_record_lists_everything_the_bits_depend_on(run, tmp_path):
    _, weights, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["record_format"] == 2
    assert record["cpu_threads"] == 1  # as given (the default is checked with torchrun, below)
    assert record["torch_version"] == torch.__version__ and record["device"] == "cpu" and record["device_name"]
    assert record["model_spec"] == f"tiny_cnn:{weights.resolve()}" and len(record["model_digest"]) == 16
    for key in ("batch_size", "backend", "acceleration", "config", "inputs_digest", "seed_id", "input_size", "mean",
                "std", "names", "version"):
        assert key in record
    entry = Manifest(out / "manifest.jsonl").read()[0]
    assert entry.input_digest and entry.output_digest and entry.output_size == (out / entry.output).stat().st_size


@pytest.mark.parametrize("field, value, label, extra", [
    ("torch_version", "1.0.0", "torch version", []),
    ("device_name", "Another CPU", "device model", []),
    ("cpu_threads", 7, "CPU threads (--threads): 7 then, 1 now", ["--threads", "1"]),  # the default would be 7
])
def test_resume_merge_and_refine_refuse_another_machine_setting(run, tmp_path, capsys, field, value, label, extra):
    _, _, _, protect, refine = run
    out = tmp_path / "out"
    assert protect(out, *MISS) == 0
    record = json.loads((out / "run.json").read_text())
    record[field] = value
    (out / "run.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert protect(out, *MISS, "--resume", *extra) == 2
    _one_error_line(capsys.readouterr().err, label)
    assert refine(out, *extra) == 2
    _one_error_line(capsys.readouterr().err, label)


def test_a_run_stopped_under_one_thread_count_is_not_resumed_under_another(run, tmp_path, capsys):
    root, weights, seed_file, protect, _ = run
    whole = tmp_path / "whole"
    assert protect(whole) == 0  # --threads 1 (tests' FAST options)
    out = tmp_path / "out"
    assert protect(out) == 0
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:2]))  # stopped after the first batch
    for name in ("c.png", "d.png", "e.png"):
        (out / name).unlink()
    capsys.readouterr()
    assert protect(out, "--resume", "--threads", "2") == 2
    _one_error_line(capsys.readouterr().err, "CPU threads (--threads): 1 then, 2 now")
    no_threads = FAST[:FAST.index("--threads")] + FAST[FAST.index("--threads") + 2:]
    assert cli.main(["protect", *no_threads, str(root), str(out), "--model", f"tiny_cnn:{weights}", "--seed-file",
                     str(seed_file), "--resume"]) == 0  # no --threads: the recorded count
    assert output_bytes(out) == output_bytes(whole)
    assert torch.get_num_threads() == 1  # the command restores the caller's thread count


def test_merge_refuses_lines_of_another_run(run, tmp_path, monkeypatch, capsys):
    _, _, _, protect, _ = run
    out = tmp_path / "out"
    protect(tmp_path / "warm")  # gives the seed file its id
    protect_as_ranks(protect, out, monkeypatch)
    rank1 = out / "manifest.rank1.jsonl"
    good = rank1.read_text()
    rank1.write_text(good.replace(read_run_record(out).config_hash, "0123456789abcdef"))
    with pytest.raises(GalleryError, match="mix two runs"):
        merge_manifests(out)
    rank1.write_text(good)
    (out / "c.png").write_bytes(b"")
    with pytest.raises(GalleryError, match="c.png"):
        merge_manifests(out)


def test_single_process_and_torchrun_with_default_settings_give_the_same_bytes(tmp_path):
    """Exactly as a user runs them: no thread setting anywhere (torchrun sets OMP_NUM_THREADS=1 per rank). The
    bundled OSNet's kernels round differently on 1 and 2 threads: with this seed and these images, 1 of the 8 PNGs
    differs between --threads 1 and 2 (measured on a 2-CPU Xeon, torch 2.13), so on
    such a machine this fails when the two commands use different counts (as they did before --threads).
    tiny_cnn's kernels give the same bits on 1 and 2 threads, so it could not catch that."""
    root = tmp_path / "in"
    write_images(root, [f"p{i}.png" for i in range(8)])
    seed_file = tmp_path / "secret"
    seed_file.write_text(f"contract 2\nseed {RUN_SEED:#066x}\nid 00112233445566778899aabbccddeeff\n")  # fixed bits
    seed_file.chmod(0o600)
    env = subprocess_env()
    env.pop("OMP_NUM_THREADS")  # the fixtures pin it for speed; a user's shell does not
    args = [str(root), None, "--model", "osnet_x0_25", "--input-size", "64", "32", "--seed-file", str(seed_file),
            "--steps", "10", "--init-steps", "2", "--final-steps", "2", "--finish-steps", "0", "--batch-size", "4",
            "--backend", "cpp", "--device", "cpu", "--no-progress"]
    single, ranks = tmp_path / "single", tmp_path / "torchrun"
    result = subprocess.run(cli_command(*[str(single) if a is None else a for a in args]), env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "-m", "pixelfade_fast.cli", "protect", *[str(ranks) if a is None else a for a in args]]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    merge_manifests(ranks)
    assert output_bytes(ranks) == output_bytes(single)
    assert read_run_record(ranks).cpu_threads == read_run_record(single).cpu_threads == usable_cpus()


# --- Runs recorded before the content binding and the machine fields -----------------------------------------

def _make_legacy(out: Path) -> None:
    """What today's main wrote: run.json without record_format and the machine fields, a config key the run
    left at its default missing (a field added to FadeConfig later), manifest lines without digests."""
    record = json.loads((out / "run.json").read_text())
    for key in ("record_format", "model_spec", "torch_version", "device_name", "cpu_threads"):
        del record[key]
    del record["config"]["beta_max_factor"]
    record["config_hash"] = "legacyhash000000"
    (out / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for manifest in out.glob("manifest*.jsonl"):
        lines = []
        for line in manifest.read_text().splitlines():
            entry = json.loads(line)
            for key in ("input_digest", "output_digest", "output_size"):
                del entry[key]
            entry["config_hash"] = "legacyhash000000"
            lines.append(json.dumps(entry, sort_keys=True) + "\n")
        manifest.write_text("".join(lines))


def test_a_legacy_run_resumes_with_the_same_bits(run, tmp_path, capsys):
    _, _, _, protect, _ = run
    whole = tmp_path / "whole"
    assert protect(whole) == 0
    out = tmp_path / "out"
    assert protect(out) == 0
    _make_legacy(out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:2]))  # stopped after the first batch
    (out / "e.png").unlink()
    (out / "b.png").write_bytes((whole / "b.png").read_bytes()[:100])  # no digest: caught as not decoding
    legacy_record = (out / "run.json").read_text()
    capsys.readouterr()
    assert protect(out, "--resume") == 0, capsys.readouterr().err
    assert "b.png (does not decode)" in capsys.readouterr().err
    assert output_bytes(out) == output_bytes(whole)
    assert (out / "run.json").read_text() == legacy_record  # the run's identity, kept
    entries = Manifest(out / "manifest.jsonl").read()
    assert len(entries) == len(NAMES) and {e.config_hash for e in entries} == {"legacyhash000000"}


def test_a_legacy_run_refines_and_merges(run, tmp_path, monkeypatch, capsys):
    root, weights, _, protect, refine = run
    out = tmp_path / "out"
    assert protect(out, *MISS) == 0
    _make_legacy(out)
    capsys.readouterr()
    assert refine(out, "--steps", "3") == 2  # no model spec recorded: it must be named
    _one_error_line(capsys.readouterr().err, "pass --model", "tiny_cnn:tiny.safetensors")
    assert refine(out, "--steps", "20", "--model", f"tiny_cnn:{weights}", "--threads", "1") == 0
    assert "refined" in capsys.readouterr().out
    sharded = tmp_path / "sharded"
    protect_as_ranks(protect, sharded, monkeypatch)
    _make_legacy(sharded)
    assert merge_manifests(sharded).inputs == len(NAMES)


# --- A run that cannot start: one line, exit 2, nothing written -------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--model", "osnet_x0_25", "--input-size", "7", "5"], "cannot run on 7x5 images"),  # its pooling needs more
    (["--model", "torch.nn:Identity"], "must return features [B, D]"),
])
def test_a_model_that_cannot_run_is_refused_before_anything_is_written(run, tmp_path, capsys, args, fragment):
    _, weights, _, protect, _ = run
    out = tmp_path / "out"
    assert protect(out, *args, model=False) == 2
    _one_error_line(capsys.readouterr().err, fragment)
    assert not out.exists()
    assert protect(out) == 0  # the folder is not left holding a run that never started


def test_an_unwritable_output_folder_is_refused_before_the_first_batch(run, tmp_path, capsys, monkeypatch):
    _, _, _, protect, _ = run
    assert protect(tmp_path / "missing" / "out") == 2
    _one_error_line(capsys.readouterr().err, "does not exist; create it first")
    assert not (tmp_path / "missing").exists()
    from pixelfade_fast.gallery import run as gallery_run

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(gallery_run, "write_run_record", read_only)
    out = tmp_path / "out"
    assert protect(out, "--seed-file", tmp_path / "new_secret") == 2
    _one_error_line(capsys.readouterr().err, "cannot write into the output folder", "Read-only file system")
    assert not out.exists() and not (tmp_path / "new_secret").exists()


def test_protect_requires_the_model(run, tmp_path, capsys):
    _, _, _, protect, _ = run
    assert protect(tmp_path / "out", model=False) == 2
    _one_error_line(capsys.readouterr().err, "--model is required", "NAME:CHECKPOINT", "FILE.onnx",
                    "package.module:callable", "zoo name")
    assert not (tmp_path / "out").exists()


# --- Feedback ----------------------------------------------------------------------------------------------------

def test_the_progress_bar_ends_with_the_summarys_counts(tmp_path, capsys):
    from pixelfade_fast.config import FadeConfig
    from pixelfade_fast.models import build_model

    root = tmp_path / "in"
    write_images(root, ["a.png", "b.png", "c.png"])
    (root / "broken.png").write_bytes(b"not an image")
    model = build_model("tiny_cnn", seed=0, input_size=SIZE)
    settings = GallerySettings(config=FadeConfig(quantize=True, steps=6, init_steps=2, final_steps=2,
                                                 finish_steps=2), batch_size=4, backend="reference", progress=True,
                               threads=1)
    report = protect_folder(model, root, tmp_path / "out", settings, model_id="tiny", log=lambda m: None)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "4/4" in last and f"met={report.met_epsilon}" in last and "failed=1" in last, last


def test_small_messages(run, tmp_path, capsys):
    root, weights, seed_file, protect, _ = run
    for name in NAMES[1:]:
        (root / name).unlink()
    (root / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert protect(out) == 1
    captured = capsys.readouterr()
    assert "protected 1 image (" in captured.out
    failed = [e for e in Manifest(out / "manifest.jsonl").read() if e.status == "failed"]
    assert failed[0].reason and str(root) not in failed[0].reason and "broken.png" in failed[0].reason
    assert cli.main(["merge", str(out)]) == 0  # a single-process run: nothing to merge, said plainly
    assert "nothing to merge" in capsys.readouterr().out


def test_help_says_what_the_commands_do(capsys):
    parser = cli.build_parser()
    texts = {}
    for command in ("protect", "merge", "refine"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        texts[command] = " ".join(capsys.readouterr().out.split())
    assert "resized to the model's input size" in texts["protect"] and "--threads" in texts["protect"]
    assert "--model is required" in texts["protect"]
    assert "Join OUT/manifest.rank" in texts["merge"]
    assert "--no-progress" in texts["refine"] and "--threads" in texts["refine"]


def test_every_test_the_document_names_exists():
    doc = (REPO / "docs" / "gallery.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", doc))
    assert len(named) >= 10
    defined = set()
    for path in (REPO / "tests").glob("test_gallery_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))
    assert named <= defined, named - defined
