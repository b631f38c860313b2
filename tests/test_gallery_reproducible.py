"""The same gallery, several ways, byte for byte: one process; one killed with SIGKILL mid-batch and resumed; one
I/O thread. Plus Ctrl-C and SIGTERM: exit 130, a line saying how to resume, and the resumed run equal to the
others. Two torchrun ranks against one process, with default settings: tests/test_gallery_guarantees.py."""
import signal
import subprocess
import sys
import time

import pytest

from gallery_fixtures import REPO, cli_command, output_bytes, run_subprocess, subprocess_env, tiny_weights, write_images
from pixelfade_fast.gallery.manifest import Manifest

NAMES = [f"cam{c}/p{i:02d}.png" for c in (1, 2) for i in range(5)]
# Slow enough per batch (about a second) that a signal lands inside a batch, small enough for CI.
ARGS = ["--steps", "60", "--init-steps", "5", "--final-steps", "5", "--finish-steps", "10", "--batch-size", "3",
        "--backend", "cpp", "--device", "cpu", "--input-size", "64", "32", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    root = base / "in"
    write_images(root, NAMES)
    weights = tiny_weights(base / "tiny.safetensors")
    seed_file = base / "secret"
    subprocess.run([sys.executable, "-m", "pixelfade_fast.cli", "seed", str(seed_file)], check=True, cwd=REPO)
    single = base / "single"
    result = run_subprocess(root, single, "--model", f"tiny_cnn:{weights}", "--seed-file", seed_file, *ARGS)
    assert result.returncode == 0, result.stderr
    return base, root, weights, seed_file, output_bytes(single)


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored and Python keeps an inherited SIG_IGN, so under
    # `make test &` the child would never see Ctrl-C; give it the default disposition, as in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(root, out, weights, seed_file):
    return subprocess.Popen(cli_command(root, out, "--model", f"tiny_cnn:{weights}", "--seed-file", seed_file, *ARGS),
                            env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def _wait_for_lines(out, count, process, timeout=240):
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the run did not write its first batch in time")


def test_single_process_covers_every_input(setup):
    base, *_ , single = setup
    assert len(single) == len(NAMES)
    assert len(Manifest(base / "single" / "manifest.jsonl").read()) == len(NAMES)


def test_sigkill_mid_batch_then_resume_gives_the_same_bytes(setup):
    base, root, weights, seed_file, single = setup
    out = base / "killed"
    process = _start(root, out, weights, seed_file)
    _wait_for_lines(out, 3, process)  # the first batch is written; the second is being protected
    process.kill()
    process.wait()
    done = len(Manifest(out / "manifest.jsonl").read())
    assert 3 <= done < len(NAMES)
    result = run_subprocess(root, out, "--model", f"tiny_cnn:{weights}", "--seed-file", seed_file, "--resume", *ARGS)
    assert result.returncode == 0, result.stderr
    assert output_bytes(out) == single
    paths = [e.path for e in Manifest(out / "manifest.jsonl").read()]
    assert sorted(paths) == sorted(NAMES)  # each input exactly once


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, and what torchrun sends its workers
def test_an_interrupt_exits_130_with_a_resume_hint(setup, stop):
    base, root, weights, seed_file, single = setup
    out = base / f"interrupted_{stop.name}"
    process = _start(root, out, weights, seed_file)
    _wait_for_lines(out, 3, process)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert "\n\ninterrupted:" not in "\n" + err and "\ninterrupted:" in "\n" + err  # no blank line before it
    result = run_subprocess(root, out, "--model", f"tiny_cnn:{weights}", "--seed-file", seed_file, "--resume", *ARGS)
    assert result.returncode == 0, result.stderr
    assert output_bytes(out) == single


def test_io_workers_do_not_change_the_bytes(setup):
    base, root, weights, seed_file, single = setup
    out = base / "one_worker"
    result = run_subprocess(root, out, "--model", f"tiny_cnn:{weights}", "--seed-file", seed_file, *ARGS,
                            "--io-workers", "1")
    assert result.returncode == 0, result.stderr
    assert output_bytes(out) == single
