"""bench/sweep_parameters.py end to end on a tiny SynthPed split: the sweep CSV, the figure, and the redraw."""
import csv
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixelfade_fast.evaluation.sweep import SWEEP_COLUMNS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import sweep_parameters  # noqa: E402


def test_sweep_script_writes_the_csv_and_redraws_the_figure(tmp_path, tiny_synthped, one_torch_thread):
    root, weights, size = tiny_synthped
    out, figure = tmp_path / "sweep.csv", tmp_path / "fig5.png"
    code = sweep_parameters.main([
        "--data", "synthped", "--root", str(root), "--model", "tiny_cnn", "--weights", str(weights),
        "--input-size", *map(str, size), "--test-ids", "3", "--attack-train", "4", "--attack-preset", "tiny",
        "--values", "steps=12,16", "--values", "beta=0.01", "--values", "epsilon=0.03", "--values", "num_masks=2",
        "--device", "cpu", "--out", str(out), "--figure", str(figure)])
    assert code == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == SWEEP_COLUMNS
    assert [(r["parameter"], r["value"]) for r in rows] == [
        ("steps", "12"), ("steps", "16"), ("beta", "0.01"), ("epsilon", "0.03"), ("num_masks", "2")]
    for row in rows:
        assert 0.0 <= float(row["map"]) <= 1.0 and -1.0 <= float(row["recovery_ssim"]) <= 1.0
    redrawn = tmp_path / "redrawn.png"
    assert sweep_parameters.main(["--plot", str(out), "--figure", str(redrawn)]) == 0
    assert Image.open(redrawn).size == Image.open(figure).size


def test_sweep_script_refuses_a_bad_values_option(tmp_path):
    with pytest.raises(SystemExit, match="--values needs NAME=V1,V2"):
        sweep_parameters.main(["--data", "synthped", "--root", str(tmp_path), "--out", str(tmp_path / "x.csv"),
                               "--figure", str(tmp_path / "x.png"), "--values", "alpha=0.5"])


def test_sweep_script_names_an_unknown_model_without_a_traceback(tmp_path, tiny_synthped):
    root, _, _ = tiny_synthped
    with pytest.raises(SystemExit, match="error: .*no_such_model"):
        sweep_parameters.main(["--data", "synthped", "--root", str(root), "--model", "no_such_model",
                               "--out", str(tmp_path / "x.csv"), "--figure", str(tmp_path / "x.png")])
