"""bench/sweep_rise_tolerance.py end to end on a tiny SynthPed split: one CSV row per tolerance, and the module
constant restored afterwards."""
import csv
import sys
from pathlib import Path

from pixelfade_fast import schedules

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import sweep_rise_tolerance  # noqa: E402


def test_sweep_writes_a_row_per_tolerance_and_restores_the_default(tmp_path, tiny_synthped, one_torch_thread):
    root, weights, _ = tiny_synthped
    default = schedules.BACKTRACK_RISE_TOLERANCE
    out = tmp_path / "sweep.csv"
    code = sweep_rise_tolerance.main(["--data", "synthped", "--root", str(root), "--model", f"tiny_cnn:{weights}",
                                      "--test-ids", "2", "--tolerances", "0", "0.5", "--out", str(out)])
    assert code == 0
    assert schedules.BACKTRACK_RISE_TOLERANCE == default
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["rise_tolerance"]) for r in rows] == [0.0, 0.5]
    for row in rows:
        assert int(row["images"]) == 8 and 0.0 <= float(row["met_rate"]) <= 1.0
        assert 100.0 <= float(row["mean_steps"]) <= 150.0 and float(row["max_loss_over_epsilon"]) > 0.0
