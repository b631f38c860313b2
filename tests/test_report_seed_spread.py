"""bench/report_seed_spread.py end to end on a tiny SynthPed split: a row per (seed, tolerance), and the module
constant restored afterwards."""
import csv
import sys
from pathlib import Path

from pixelfade_fast import schedules

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import report_seed_spread  # noqa: E402


def test_spread_writes_a_row_per_seed_and_tolerance(tmp_path, tiny_synthped, one_torch_thread):
    root, weights, _ = tiny_synthped
    default = schedules.BACKTRACK_RISE_TOLERANCE
    out = tmp_path / "spread.csv"
    code = report_seed_spread.main(["--data", "synthped", "--root", str(root), "--model", f"tiny_cnn:{weights}",
                                    "--max-test-ids", "2", "--seeds", "1", "2", "--tolerances", "0", "0.5",
                                    "--out", str(out)])
    assert code == 0
    assert schedules.BACKTRACK_RISE_TOLERANCE == default
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["seed"]), float(r["rise_tolerance"])) for r in rows] == [(1, 0.0), (1, 0.5), (2, 0.0), (2, 0.5)]
    for row in rows:
        assert int(row["query"]) + int(row["gallery"]) == 8
        assert 0.0 <= float(row["met_rate"]) <= 1.0 and float(row["mAP_kept"]) > 0.0 and float(row["mAP_clean"]) > 0.0
