"""Best-of attackers and the attack verdict: a method never looks more private than its own protected image, and
a run whose attack cannot recover blur above the floor says so."""
import pytest
import torch

from pixelfade_fast.evaluation.attack import prior_floor, run_attack, score_images
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.leakage import SEPARATION_PSNR_DB, SEPARATION_SSIM, attack_verdict, best_of
from pixelfade_fast.evaluation.privacy import psnr, ssim
from engine_models import smooth_images

SHORT = attack_preset("tiny", epochs=1, width=8, depth=3)  # a barely trained U-Net: the trivial attackers can win


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def split():
    images = smooth_images(48, 32, 16, seed=4)
    return images[:32], images[32:]


@pytest.fixture(scope="module")
def floor(split):
    train, test = split
    return prior_floor(train, test, SHORT)


def test_best_of_takes_each_metric_from_its_own_winner():
    result = best_of({"unet": {"psnr": 15.0, "ssim": 0.40}, "protected": {"psnr": 18.0, "ssim": 0.30},
                      "mean": {"psnr": 14.0, "ssim": 0.45}})
    assert (result["psnr"], result["psnr_attacker"]) == (18.0, "protected")
    assert (result["ssim"], result["ssim_attacker"]) == (0.45, "mean")
    assert result["attackers"]["unet"] == {"psnr": 15.0, "ssim": 0.40}
    # ties go to the first given (the suite gives them in the registry's order: the trained network first)
    tie = best_of({"unet": {"psnr": 12.0, "ssim": 0.2}, "mean": {"psnr": 12.0, "ssim": 0.2}})
    assert tie["psnr_attacker"] == tie["ssim_attacker"] == "unet"
    tie = best_of({"mean": {"psnr": 12.0, "ssim": 0.2}, "unet": {"psnr": 12.0, "ssim": 0.2}})
    assert tie["psnr_attacker"] == tie["ssim_attacker"] == "mean"
    with pytest.raises(ValueError, match="finite ssim"):
        best_of({"unet": {"psnr": 12.0, "ssim": float("nan")}})
    with pytest.raises(ValueError, match="at least one"):
        best_of({})


def test_floor_is_the_best_information_free_attacker(split, floor):
    train, test = split
    mean = score_images(train.mean(dim=0, keepdim=True), test)
    assert floor["attackers"]["mean"]["psnr"] == pytest.approx(mean["psnr"])
    expected = psnr(train.mean(dim=0, keepdim=True).expand_as(test), test).double().mean().item()
    assert mean["psnr"] == pytest.approx(expected, rel=1e-6)
    for metric in ("psnr", "ssim"):
        assert floor[metric] == max(floor["attackers"]["unet"][metric], floor["attackers"]["mean"][metric])
        assert floor[metric] == floor["attackers"][floor[f"{metric}_attacker"]][metric]


def test_a_protected_image_closer_than_the_unet_gives_the_figure(split, floor):
    train, test = split
    generator = torch.Generator().manual_seed(2)
    protected_train, protected_test = ((x + 0.02 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
                                       for x in (train, test))
    result = run_attack(protected_train, train, protected_test, test, SHORT, floor=floor)
    assert result["unet_psnr"] < result["visual_psnr"] and result["unet_ssim"] < result["visual_ssim"]
    assert result["psnr_attacker"] == result["ssim_attacker"] == "protected"
    assert result["psnr"] == result["visual_psnr"] == pytest.approx(psnr(protected_test, test).mean().item())
    assert result["ssim"] == result["visual_ssim"] == pytest.approx(ssim(protected_test, test).mean().item())
    assert result["leakage_psnr"] == pytest.approx(result["visual_psnr"] - floor["psnr"])
    assert result["leakage_psnr"] > result["unet_leakage_psnr"]


def test_a_method_that_discards_everything_gets_the_mean_image_at_best(split, floor):
    train, test = split
    blank = torch.zeros_like
    untrained = attack_preset("tiny", epochs=1, lr=1e-7)  # its U-Net stays a grey guess, behind the mean image
    result = run_attack(blank(train), train, blank(test), test, untrained, floor=floor)
    for metric in ("psnr", "ssim"):
        values = {name: scores[metric] for name, scores in result["attackers"].items()}
        assert result[metric] == max(values.values()) == values["mean"]
        assert result[f"{metric}_attacker"] == "mean"
        assert values["protected"] < values["mean"]  # a black image is nobody's best recovery
        # the mean image is information-free, so it is also in the floor: no leakage
        assert result[f"leakage_{metric}"] <= 0.0


def _privacy(unet_gain_psnr: float, unet_gain_ssim: float, visual_psnr: float = 17.0, visual_ssim: float = 0.5):
    floor_psnr, floor_ssim = 14.0, 0.40
    return {"blur": {"unet_leakage_psnr": unet_gain_psnr, "unet_leakage_ssim": unet_gain_ssim,
                     "unet_psnr": floor_psnr + unet_gain_psnr, "unet_ssim": floor_ssim + unet_gain_ssim,
                     "visual_psnr": visual_psnr, "visual_ssim": visual_ssim}}


@pytest.mark.parametrize("gain_psnr, gain_ssim, status", [
    (0.2, 0.01, "inconclusive"),  # blur ≈ floor: the attack learned nothing
    (SEPARATION_PSNR_DB + 3.0, SEPARATION_SSIM - 0.01, "inconclusive"),  # both metrics must separate
    (SEPARATION_PSNR_DB - 0.01, SEPARATION_SSIM + 0.2, "inconclusive"),
    (SEPARATION_PSNR_DB, SEPARATION_SSIM, "conclusive"),  # the thresholds themselves pass
    (6.5, 0.25, "conclusive"),  # blur well above the floor
])
def test_verdict_needs_blur_clearly_above_the_floor(gain_psnr, gain_ssim, status):
    verdict = attack_verdict(_privacy(gain_psnr, gain_ssim))
    assert verdict["status"] == status
    assert verdict["control"] == "blur" and f"{gain_psnr:+.2f} dB" in verdict["reason"]
    assert ("too weak" in verdict["reason"]) == (status == "inconclusive")


def test_verdict_records_whether_the_unet_beat_blur_itself_and_needs_blur():
    verdict = attack_verdict(_privacy(6.5, 0.25, visual_psnr=19.0, visual_ssim=0.7))
    assert verdict["unet_beats_protected_psnr"] is True and verdict["unet_beats_protected_ssim"] is False
    missing = attack_verdict({"pixelfade": _privacy(0.0, 0.0)["blur"]})
    assert missing["status"] == "no control" and "add blur" in missing["reason"]
