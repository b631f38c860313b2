"""bench/gpu_check.sh in its CPU dry run: every phase runs, at most 8 result files, the summary printed last.

The real run spends scarce GPU minutes in one call; this keeps the script itself from breaking unnoticed."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILE_LIMIT = 8  # the device returns at most 8 files from $OUT


def test_gpu_check_dry_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), DRY_RUN="1", PYTHON=sys.executable, OMP_NUM_THREADS="1")
    result = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + (tmp_path / "gpu_check.log").read_text()[-3000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["e2e.csv", "e2e.png", "gallery.csv", "gpu_check.log", "ops.csv", "summary.txt"]
    assert len(files) <= DEVICE_FILE_LIMIT
    summary = (tmp_path / "summary.txt").read_text()
    assert result.stdout.rstrip().endswith(summary.rstrip())  # the table against the targets comes last
    assert "end to end" in summary and "gallery:" in summary and "fused step targets" in summary
    log = (tmp_path / "gpu_check.log").read_text()
    for phase in ("GPU tests", "kernel benchmark", "end-to-end benchmark", "gallery benchmark"):
        assert f"=== {phase}" in log
