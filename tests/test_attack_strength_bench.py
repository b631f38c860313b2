"""bench/bench_attack_strength.py end to end on a tiny SynthPed split: long-format rows whose leakage and best-of
agree with the attackers' own figures."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_attack_strength  # noqa: E402
from common import read_measurements  # noqa: E402


def test_the_bench_writes_every_attackers_figures_in_the_long_format(tmp_path, tiny_synthped, one_torch_thread):
    root, weights, size = tiny_synthped
    out = tmp_path / "strength.csv"
    assert bench_attack_strength.main([
        "--data", "synthped", "--root", str(root), "--size", *map(str, size), "--preset", "tiny", "--set", "epochs=1",
        "--set", "width=8", "--methods", "blur", "--attackers", "authors,feature_decoder", "--attacker-size", "tiny",
        "--model", f"tiny_cnn:{weights}", "--mean-floor-only", "--out", str(out)]) == 0
    rows = read_measurements(out)
    value = {(r["case"].split(" ")[-1] if "clean" not in r["case"] else "clean", r["provider"], r["metric"]):
             r["value"] for r in rows}
    floor = value[("floor", "best", "psnr")]
    assert floor == value[("floor", "mean", "psnr")]  # --mean-floor-only
    attackers = ("unet", "protected", "mean", "authors", "feature_decoder")
    for name in attackers:
        assert value[("blur", name, "leakage_psnr")] == pytest.approx(value[("blur", name, "psnr")] - floor)
    assert value[("blur", "best", "psnr")] == max(value[("blur", name, "psnr")] for name in attackers)
    assert ("blur", "authors", "authors_metric_ssim") in value and ("clean", "feature_decoder", "ssim") in value
    assert value[("blur", "authors", "train_and_score_time")] > 0
    with pytest.raises(SystemExit, match="need --model"):
        bench_attack_strength.main(["--data", "synthped", "--root", str(root), "--attackers", "adversarial",
                                    "--out", str(out)])
