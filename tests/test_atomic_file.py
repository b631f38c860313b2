"""The one atomic writer (pixelfade_fast/atomic_file.py) and the files written through it: whole or absent, with
the mode a plain new file gets (reports were private 0600 files when written through a bare mkstemp)."""
import os
import stat

import pytest

from pixelfade_fast.atomic_file import default_file_mode, write_atomic, write_bytes_atomic
from pixelfade_fast.evaluation.report import _write_report_md
from pixelfade_fast.models import build_model
from pixelfade_fast.training.checkpoint import save_checkpoint


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_umask_mode_and_no_temporary_is_left(tmp_path, umask_027):
    assert default_file_mode() == 0o640
    write_bytes_atomic(tmp_path / "sub" / "a.bin", b"abc")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"abc" and mode(tmp_path / "sub" / "a.bin") == 0o640
    report = _write_report_md(tmp_path, ["# title"], {"total": 1.0}, "pixelfade evaluate")
    assert mode(report) == 0o640 and report.read_text().startswith("# title")
    weights = save_checkpoint(build_model("tiny_cnn", seed=0, input_size=(32, 16)), tmp_path / "w.safetensors")
    assert mode(weights) == 0o640 and weights.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    write_bytes_atomic(target, b"old")

    def fail(stream):
        stream.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, fail, 0o600)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
