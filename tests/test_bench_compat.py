"""bench/bench_compat.py end to end on a tiny model: the two loops' rows and their ratio, in the long format."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_compat  # noqa: E402
from common import read_measurements  # noqa: E402


def test_writes_both_loops_and_their_ratio(tmp_path, one_torch_thread):
    out = tmp_path / "compat.csv"
    assert bench_compat.main(["--model", "tiny_cnn", "--size", "32", "16", "--batch", "3", "--max-iter", "10",
                              "--repeats", "2", "--out", str(out)]) == 0
    rows = {(r["provider"], r["metric"]): r for r in read_measurements(out)}
    official = rows[("official_loop", "time_per_batch")]
    compat = rows[("compat_released", "time_per_batch")]
    ratio = rows[("compat_released", "speedup_vs_official_loop")]
    assert len(rows) == 3 and official["value"] > 0 and compat["value"] > 0
    assert official["repeats"] == compat["repeats"] == ratio["repeats"] == "2" and ratio["x_value"] == "3"
    # the median ratio of two pairs lies between the two pair ratios, so near the ratio of the medians
    assert 0.25 < ratio["value"] / (official["value"] / compat["value"]) < 4
