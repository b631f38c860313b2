"""A tiny end-to-end evaluation: SynthPed -> protect with each method -> Re-ID, attack, report files."""
import json
import shlex

import pytest
from PIL import Image

from pixelfade_fast import cli
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.report import THIRD_PARTY_MAX_SSIM, grid_rows, headline_table, write_report
from pixelfade_fast.evaluation.suite import SuiteSettings, run_suite
from pixelfade_fast.models import build_model, save_safetensors

SIZE = (32, 16)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthped")
    split = generate_synthped(root, num_ids_train=4, num_ids_test=5, images_per_id_per_cam=1, num_cams=2,
                              size=SIZE, seed=3)
    return root, split


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_suite_scores_every_method_and_writes_the_report(tiny_data, tmp_path):
    _, split = tiny_data
    model = build_model("tiny_cnn", seed=0, input_size=SIZE)
    settings = SuiteSettings(methods=("pixelfade", "mosaic", "blur"), known_noise=True, grid_images=3,
                             attack=attack_preset("tiny", epochs=1, width=8, max_pairs=None, flip=True))
    result = run_suite(model, split, settings, dataset="tiny")
    assert set(result.reid) == set(result.privacy) == {"pixelfade", "mosaic", "blur"}
    for method, reid in result.reid.items():
        assert set(reid) == {"protected->protected", "original->protected", "protected->original",
                             "original->original"}
        for metrics in reid.values():
            assert 0 <= metrics["mAP"] <= 1 and metrics["num_valid_queries"] == len(split.query)
        # original->original does not depend on the method
        assert reid["original->original"] == result.reid["mosaic"]["original->original"]
        p = result.privacy[method]
        assert p["leakage_psnr"] == pytest.approx(p["psnr"] - result.floor["psnr"])
        # the best of three attackers: never below the method's own protected image or the mean image
        for metric in ("psnr", "ssim"):
            assert p[metric] == max(p[f"unet_{metric}"], p[f"visual_{metric}"],
                                    result.floor["attackers"]["mean"][metric])
            assert p[f"{metric}_attacker"] in ("unet", "protected", "mean")
        assert p["unet_leakage_ssim"] == pytest.approx(p["unet_ssim"] - result.floor["ssim"])
        assert 0 <= p["met_epsilon_rate"] <= 1
    # PixelFade's images look nothing like the originals; a mosaic still does
    assert result.privacy["pixelfade"]["visual_ssim"] < result.privacy["mosaic"]["visual_ssim"]
    assert result.privacy["pixelfade"]["ad_mean"] < result.privacy["mosaic"]["ad_mean"]
    assert "known_noise_psnr" in result.privacy["pixelfade"] and "known_noise_ssim_attacker" in result.privacy["pixelfade"]
    # one epoch of a width-8 U-Net cannot separate blur from the floor: the run must say so
    assert result.verdict["status"] == "inconclusive", result.verdict
    report = write_report(result, tmp_path / "report", "test")
    text = report.read_text()
    assert "| pixelfade |" in text and "## Re-ID, four settings" in text
    assert "**Attack verdict: INCONCLUSIVE.**" in text and "## Recovery attack, each attacker" in text
    payload = json.loads((tmp_path / "report" / "report.json").read_text())
    assert payload["privacy"]["blur"]["visual_ssim"] == pytest.approx(result.privacy["blur"]["visual_ssim"])
    assert payload["verdict"]["status"] == "inconclusive" and payload["settings"]["attack"]["width"] == 8
    assert payload["privacy"]["mosaic"]["psnr_attacker"] == result.privacy["mosaic"]["psnr_attacker"]
    for figure in ("grid.png", "privacy_utility.png", "ad_vs_recovery.png"):
        assert (tmp_path / "report" / figure).stat().st_size > 10_000
    assert headline_table(result).count("\n") == 4  # header, rule, three methods
    full = Image.open(tmp_path / "report" / "grid.png").size
    write_report(result, tmp_path / "hidden", "test", show_originals=False)
    hidden = Image.open(tmp_path / "hidden" / "grid.png").size
    # no originals, no protected thumbnails that still resemble the original, 3 of the columns
    close = {m for m, p in result.privacy.items() if p["visual_ssim"] >= THIRD_PARTY_MAX_SSIM}
    shown = [n for n in result.grid if n != "original" and n.replace(": protected", "") not in close]
    assert list(grid_rows(result, show_originals=False)) == shown
    assert all(v.shape[0] == 3 for v in grid_rows(result, show_originals=False).values())
    assert hidden == (full[0], full[1] * len(shown) // len(result.grid))  # grid_images=3: same width


def test_evaluate_command(tiny_data, tmp_path, capsys):
    root, _ = tiny_data
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=1, input_size=SIZE), weights)
    code = cli.main(["evaluate", "--data", "synthped", "--root", str(root), "--model", "tiny_cnn",
                     "--weights", str(weights), "--input-size", *map(str, SIZE), "--methods", "mosaic,blur",
                     "--attack-preset", "tiny", "--attack-epochs", "1", "--attack-width", "8", "--max-test-ids", "3",
                     "--name", "tiny world (3 ids)", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code == 0
    payload = json.loads((tmp_path / "out" / "report.json").read_text())
    assert payload["sizes"]["query_ids"] == 3
    # the recorded command can be pasted back into a shell: arguments with spaces stay one argument
    recorded = shlex.split(payload["command"])
    assert recorded[recorded.index("--name") + 1] == "tiny world (3 ids)"
    assert "--methods mosaic,blur" in payload["command"]
    attack = payload["settings"]["attack"]
    assert (attack["epochs"], attack["width"], attack["max_pairs"]) == (1, 8, 64)  # tiny preset, two overridden
    capsys.readouterr()
    for args, message in ((["--attack-preset", "huge"], "unknown attack preset 'huge'"),
                          (["--attack-width", "0"], "width must be an integer >= 1"),
                          (["--methods", "sharpen"], "unknown methods")):
        assert cli.main(["evaluate", "--data", "synthped", "--root", str(root), *args, "--out", "x"]) == 2
        assert message in capsys.readouterr().err
    assert cli.main(["evaluate", "--data", "cuhk01", "--root", str(tmp_path / "none"), "--out", "x",
                     "--weights", str(weights), "--model", "tiny_cnn"]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_reviewers_attackers_join_the_best_of_and_the_report_gains_the_utility_floor(tiny_data, tmp_path):
    _, split = tiny_data
    model = build_model("tiny_cnn", seed=0, input_size=SIZE)
    other = build_model("tiny_cnn", seed=1, input_size=SIZE)
    added = ("feature_decoder_other", "authors", "adversarial_other", "feature_decoder")
    settings = SuiteSettings(methods=("blur",), known_noise=False, grid_images=3, attackers=added,
                             attacker_size="tiny", attack=attack_preset("tiny", epochs=1, width=8, max_pairs=None))
    with pytest.raises(ValueError, match=r"need another Re-ID model.*--attacker-model"):
        run_suite(model, split, settings, dataset="tiny")
    result = run_suite(model, split, settings, dataset="tiny", other_model=other)
    p, utility = result.privacy["blur"], result.floor["utility"]
    assert list(p["attackers"]) == ["authors", "feature_decoder", "adversarial_other",
                                    "feature_decoder_other"]  # registry order
    everyone = {"unet": p["unet_psnr"], "protected": p["visual_psnr"],
                "mean": result.floor["attackers"]["mean"]["psnr"], **{n: s["psnr"] for n, s in p["attackers"].items()}}
    assert p["psnr"] == max(everyone.values()) and everyone[p["psnr_attacker"]] == p["psnr"]
    assert "authors_metric_psnr" in p["attackers"]["authors"]
    # the second floor: the best of the information-free floor and the decoders on clean features
    assert set(utility["attackers"]) == {"feature_decoder", "feature_decoder_other", "unet", "mean"}
    assert utility["psnr"] >= result.floor["psnr"] and utility["ssim"] >= result.floor["ssim"]
    assert p["utility_leakage_psnr"] == pytest.approx(p["psnr"] - utility["psnr"])
    report = write_report(result, tmp_path / "report", "test", show_originals=False)
    text = report.read_text()
    assert "## The reviewer's attackers (--attackers)" in text and "Second floor, what utility alone leaks" in text
    assert "their metric" in text and "![recoveries by attacker](recoveries.png)" in text
    assert "and of feature_decoder_other, authors, adversarial_other, feature_decoder (below)." in text
    assert (tmp_path / "report" / "recoveries.png").stat().st_size > 10_000
    payload = json.loads((tmp_path / "report" / "report.json").read_text())
    assert payload["floor"]["utility"]["psnr"] == utility["psnr"] and payload["settings"]["attackers"] == list(added)
