"""The reviewer's-attackers figures that docs/results quotes (README.md and attack_strength.md) are the committed
reports' own (report.json), and the issue-25 targets those pages claim hold in the reports themselves."""
import json
import re
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
PAGES = ("README.md", "attack_strength.md")
REPORTS = ("cuhk01_attackers", "synthped_attackers")


def _report(name: str) -> dict:
    return json.loads((RESULTS / name / "report.json").read_text())


def _page(name: str) -> str:
    return (RESULTS / name).read_text().replace("\u2212", "-")  # the pages write minus signs as U+2212


def _leakage(psnr: float, ssim: float) -> str:
    return f"{psnr:+.2f} dB / {ssim:+.3f}"


def _assert_pixelfade_under_the_second_floor(result: dict, where) -> None:
    pixelfade = result["privacy"]["pixelfade"]
    assert pixelfade["utility_leakage_psnr"] <= 0.2 and pixelfade["utility_leakage_ssim"] <= 0.01, where


def _assert_adversarial_wins_blur_by_4_7_db(result: dict, where) -> None:
    blur = result["privacy"]["blur"]
    adversarial = blur["attackers"]["adversarial"]
    assert adversarial["psnr"] - result["floor"]["psnr"] >= 4.7, where
    assert adversarial["psnr"] >= blur["unet_psnr"] and blur["psnr_attacker"] == "adversarial", where


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("report", REPORTS)
def test_each_methods_leakage_over_both_floors_is_quoted_as_its_report_has_it(report, page):
    text = _page(page)
    for method, figures in _report(report)["privacy"].items():
        over_floor = _leakage(figures["leakage_psnr"], figures["leakage_ssim"])
        over_second = _leakage(figures["utility_leakage_psnr"], figures["utility_leakage_ssim"])
        assert over_floor in text, f"{page} lacks {report}'s {method} leakage over the floor, {over_floor}"
        assert over_second in text, f"{page} lacks {report}'s {method} leakage over the second floor, {over_second}"


@pytest.mark.parametrize("report", REPORTS)
def test_both_floors_are_quoted_as_the_report_has_them(report):
    floor = _report(report)["floor"]
    second = floor["utility"]
    for page in PAGES:
        text = _page(page)
        assert f"{floor['psnr']:.2f}" in text and f"{floor['ssim']:.3f}" in text, (page, report, "floor")
        assert re.search(rf"{second['psnr']:.2f}( dB)? / {second['ssim']:.3f}", text), (page, report, "second floor")


@pytest.mark.parametrize("report", REPORTS)
def test_the_reports_verdicts_are_conclusive_and_pixelfade_leaks_no_more_than_the_second_floor(report):
    result = _report(report)
    assert result["verdict"]["status"] == "conclusive"
    _assert_pixelfade_under_the_second_floor(result, report)
    pixelfade = result["privacy"]["pixelfade"]
    readme = (RESULTS.parents[1] / "README.md").read_text().replace("\u2212", "-")
    over_second = _leakage(pixelfade["utility_leakage_psnr"], pixelfade["utility_leakage_ssim"])
    assert over_second in readme, "README.md's Evaluation section quotes it too"
    # the second floor is never under the information-free one: it is the best of both
    floor = result["floor"]
    assert floor["utility"]["psnr"] >= floor["psnr"] and floor["utility"]["ssim"] >= floor["ssim"]


def test_the_adversarial_attacker_recovers_cuhk01_blur_at_least_as_the_strong_unet_and_by_4_7_db():
    result = _report("cuhk01_attackers")
    _assert_adversarial_wins_blur_by_4_7_db(result, "cuhk01_attackers")
    blur = result["privacy"]["blur"]
    assert blur["attackers"]["adversarial"]["ssim"] >= blur["unet_ssim"]


def test_the_seed_spread_table_quotes_each_seeds_report():
    text = _page("attack_strength.md")
    seeds = sorted((RESULTS / "attackers_seeds").glob("*/report.json"))
    assert [path.parent.name for path in seeds] == ["cuhk01_seed1", "cuhk01_seed2", "synthped_small_seed0",
                                                    "synthped_small_seed1", "synthped_small_seed2"]
    for path in seeds:
        result = json.loads(path.read_text())
        pixelfade = result["privacy"]["pixelfade"]
        over_floor = _leakage(pixelfade["leakage_psnr"], pixelfade["leakage_ssim"])
        over_second = _leakage(pixelfade["utility_leakage_psnr"], pixelfade["utility_leakage_ssim"])
        assert f"| {over_floor} | {over_second} |" in text, f"the seed table lacks {path.parent.name}'s row"
        # the claims made of the spread: the PixelFade target at every seed, the GAN attacker above the U-Net
        _assert_pixelfade_under_the_second_floor(result, path)
        if path.parent.name.startswith("cuhk01"):
            _assert_adversarial_wins_blur_by_4_7_db(result, path)
