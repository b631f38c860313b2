"""The long benchmark format (bench/common.py): fixed columns, quantiles of the repeats, refusal of other layouts."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import COLUMNS, measurement, read_measurements, write_measurements  # noqa: E402


def test_a_row_has_the_fixed_columns_and_the_median_with_quantiles(tmp_path):
    row = measurement("e2e", "osnet 256x128", "protect_cpp", "time_per_image_step", "ms", [5.0, 1.0, 3.0, 2.0, 4.0],
                      device=torch.device("cpu"), x_name="batch", x_value=16, config={"steps": 12, "fold": True})
    assert tuple(row) == COLUMNS
    assert row["value"] == 3.0 and row["repeats"] == 5
    assert 1.0 < row["value_p20"] < row["value"] < row["value_p80"] < 5.0
    assert row["config"] == '{"fold":true,"steps":12}'
    assert row["threads"] == torch.get_num_threads() and row["cpu_model"]
    single = measurement("e2e", "c", "p", "m", "x", 2.5, device=torch.device("cpu"))
    assert single["value"] == 2.5 and single["value_p20"] == "" and single["repeats"] == 1
    path = tmp_path / "out" / "bench.csv"
    write_measurements(path, [row, single])
    back = read_measurements(path)
    assert [r["value"] for r in back] == [3.0, 2.5] and back[0]["x_value"] == "16"


def test_other_layouts_are_refused(tmp_path):
    row = measurement("e2e", "c", "p", "m", "x", 1.0, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="long format"):
        write_measurements(tmp_path / "a.csv", [{**row, "extra": 1}])
    with pytest.raises(ValueError, match="no values"):
        measurement("e2e", "c", "p", "m", "x", [], device=torch.device("cpu"))
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("model,batch,ms\nosnet,16,3.0\n")
    with pytest.raises(ValueError, match="not a long-format"):
        read_measurements(legacy)
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "bench" / "results").glob("*.csv")),
                         ids=lambda path: path.name)
def test_every_committed_benchmark_csv_is_in_the_long_format(path):
    rows = read_measurements(path)
    assert rows and all(row["bench"] and row["metric"] and row["date"] for row in rows)
