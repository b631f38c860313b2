"""The two bench scripts that sweep FadeConfig.rise_tolerance, end to end on a tiny SynthPed split: a CSV row per
run, and the tolerance reaching the protection (a row per tolerance that differs where the rule acts)."""
import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import report_seed_spread  # noqa: E402
import sweep_rise_tolerance  # noqa: E402


@pytest.fixture
def run_bench(tmp_path, tiny_synthped, one_torch_thread):
    """Runs a bench script's main on the tiny split with ``extra`` arguments; returns its CSV rows."""
    root, weights, _ = tiny_synthped

    def run(script, *extra: str) -> list[dict]:
        out = tmp_path / f"{script.__name__}.csv"
        code = script.main(["--data", "synthped", "--root", str(root), "--model", f"tiny_cnn:{weights}", *extra,
                            "--out", str(out)])
        assert code == 0
        with open(out, newline="") as handle:
            return list(csv.DictReader(handle))

    return run


def test_sweep_writes_a_row_per_tolerance(run_bench):
    rows = run_bench(sweep_rise_tolerance, "--test-ids", "2", "--tolerances", "0", "0.5")
    assert [float(r["rise_tolerance"]) for r in rows] == [0.0, 0.5]
    for row in rows:
        assert int(row["images"]) == 8 and 0.0 <= float(row["met_rate"]) <= 1.0
        assert 100.0 <= float(row["mean_steps"]) <= 150.0 and float(row["max_loss_over_epsilon"]) > 0.0
    # the tolerance reaches the protection: the two runs end at different losses
    assert rows[0]["max_loss_over_epsilon"] != rows[1]["max_loss_over_epsilon"]


def test_seed_spread_writes_a_row_per_seed_and_tolerance(run_bench):
    rows = run_bench(report_seed_spread, "--max-test-ids", "2", "--seeds", "1", "2", "--tolerances", "0", "0.5")
    assert [(int(r["seed"]), float(r["rise_tolerance"])) for r in rows] == [(1, 0.0), (1, 0.5), (2, 0.0), (2, 0.5)]
    for row in rows:
        assert int(row["query"]) + int(row["gallery"]) == 8
        assert 0.0 <= float(row["met_rate"]) <= 1.0 and float(row["mAP_kept"]) > 0.0 and float(row["mAP_clean"]) > 0.0
