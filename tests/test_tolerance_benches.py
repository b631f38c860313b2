"""The two bench scripts that sweep FadeConfig.rise_tolerance, end to end on a tiny SynthPed split: long-format rows
per run, and the tolerance reaching the protection (runs of different tolerances differ where the rule acts)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import report_seed_spread  # noqa: E402
import sweep_rise_tolerance  # noqa: E402
from common import read_measurements  # noqa: E402


@pytest.fixture
def run_bench(tmp_path, tiny_synthped, one_torch_thread):
    """Runs a bench script's main on the tiny split with ``extra`` arguments; returns its runs, one dict per
    (x value, config) of its long-format rows: the metrics by name, the config's settings and ``x``."""
    root, weights, _ = tiny_synthped

    def run(script, *extra: str) -> list[dict]:
        out = tmp_path / f"{script.__name__}.csv"
        code = script.main(["--data", "synthped", "--root", str(root), "--model", f"tiny_cnn:{weights}", *extra,
                            "--out", str(out)])
        assert code == 0
        runs: dict[tuple[str, str], dict] = {}
        for row in read_measurements(out):  # refuses any other layout than COLUMNS
            assert row["cpu_model"] and int(row["threads"]) >= 1 and row["case"].startswith("synthped tiny_cnn:")
            entry = runs.setdefault((row["x_value"], row["config"]), {"x": row["x_value"], **json.loads(row["config"])})
            assert row["metric"] not in entry, f"{row['metric']} twice for one run"
            entry[row["metric"]] = row["value"]
        return list(runs.values())

    return run


def test_sweep_writes_a_row_per_tolerance(run_bench):
    rows = run_bench(sweep_rise_tolerance, "--test-ids", "2", "--tolerances", "0", "0.5")
    assert [float(r["x"]) for r in rows] == [0.0, 0.5]
    for row in rows:
        assert row["images"] == 8 and 0.0 <= row["met_rate"] <= 1.0
        assert 100.0 <= row["mean_steps"] <= 150.0 and row["max_loss_over_epsilon"] > 0.0
    # the tolerance reaches the protection: the two runs end at different losses
    assert rows[0]["max_loss_over_epsilon"] != rows[1]["max_loss_over_epsilon"]


def test_seed_spread_writes_a_row_per_seed_and_tolerance(run_bench):
    rows = run_bench(report_seed_spread, "--max-test-ids", "2", "--seeds", "1", "2", "--tolerances", "0", "0.5")
    assert [(int(r["x"]), r["rise_tolerance"]) for r in rows] == [(1, 0.0), (1, 0.5), (2, 0.0), (2, 0.5)]
    for row in rows:
        assert row["query"] + row["gallery"] == 8
        assert 0.0 <= row["met_rate"] <= 1.0 and row["mAP_kept"] > 0.0 and row["mAP_clean"] > 0.0
