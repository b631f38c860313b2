"""Recovery attack: recovers an identity 'protection', learns only the prior from noise, needs η to beat a
noise-masked image, is deterministic on CPU; U-Net shapes and batch independence."""
import dataclasses

import numpy as np
import pytest
import torch

from pixelfade_fast.evaluation.attack import (attacker_noise, evaluate_recovery, prior_floor, run_attack,
                                              train_recovery)
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.privacy import psnr, ssim
from pixelfade_fast.evaluation.unet import RecoveryUNet
from engine_models import smooth_images

FAST = attack_preset("tiny")  # a tiny set needs a larger lr than 2e-4
ONE_EPOCH = attack_preset("tiny", epochs=1, batch_size=16, width=8, depth=3)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def split():
    images = smooth_images(80, 32, 16, seed=1)
    return images[:64], images[64:]


@pytest.fixture(scope="module")
def floor(split):
    train, test = split
    return prior_floor(train, test, FAST)


def test_identity_protection_is_recovered_far_above_the_floor(split, floor):
    train, test = split
    result = run_attack(train, train, test, test, FAST, floor=floor)
    assert result["visual_psnr"] == 100.0 and result["visual_ssim"] == pytest.approx(1.0, abs=1e-5)
    # the U-Net alone learns the identity; the best attacker is the (unprotected) image itself
    assert result["unet_psnr"] > floor["psnr"] + 4.0, (result["unet_psnr"], floor["psnr"])
    assert result["unet_ssim"] > floor["ssim"] + 0.25, (result["unet_ssim"], floor["ssim"])
    assert result["psnr_attacker"] == result["ssim_attacker"] == "protected"
    assert result["psnr"] == result["visual_psnr"] and result["ssim"] == result["visual_ssim"]
    assert result["leakage_psnr"] == pytest.approx(result["psnr"] - floor["psnr"])
    assert result["leakage_ssim"] == pytest.approx(result["ssim"] - floor["ssim"])
    assert result["unet_leakage_ssim"] == pytest.approx(result["unet_ssim"] - floor["ssim"])
    assert result["known_noise"] is False


def test_noise_inputs_only_reach_the_floor(split, floor):
    train, test = split
    generator = torch.Generator().manual_seed(9)
    noise_train = torch.rand(train.shape, generator=generator)  # a 'protection' that discards everything
    noise_test = torch.rand(test.shape, generator=generator)
    result = run_attack(noise_train, train, noise_test, test, FAST, floor=floor)
    assert abs(result["leakage_psnr"]) < 1.5, result["leakage_psnr"]
    assert result["leakage_ssim"] < 0.05, result["leakage_ssim"]
    # the floor network ignores its input: its recoveries barely differ from image to image
    spread = floor["recovered"].std(dim=0).mean().item()
    assert spread < 0.2 * test[:8].std(dim=0).mean().item(), spread


def test_known_noise_attacker_undoes_what_the_blind_one_cannot(split, floor):
    train, test = split
    uids = list(range(80))
    eta = attacker_noise(seed=1234, uids=uids, shape=(3, 32, 16))
    masked = torch.cat([train, test]) + 2.0 * eta  # the image buried under its keyed noise
    blind = run_attack(masked[:64], train, masked[64:], test, FAST, floor=floor)
    knowing = run_attack(masked[:64], train, masked[64:], test, FAST, floor=floor, noise_train=eta[:64],
                         noise_test=eta[64:])
    assert knowing["known_noise"] is True
    assert blind["leakage_ssim"] < 0.15, blind["leakage_ssim"]
    assert knowing["leakage_ssim"] > blind["leakage_ssim"] + 0.15, (knowing["leakage_ssim"], blind["leakage_ssim"])
    assert knowing["leakage_psnr"] > blind["leakage_psnr"] + 2.0


def test_training_is_deterministic_for_a_seed_on_cpu(split):
    train, _ = split
    settings = dataclasses.replace(ONE_EPOCH, flip=True, shift=2, crop=(24, 12), schedule="onecycle")
    first = train_recovery(train, train, settings, seed=5).state_dict()
    again = train_recovery(train, train, settings, seed=5).state_dict()
    other = train_recovery(train, train, settings, seed=6).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_evaluate_recovery_reports_per_image_scores(split):
    train, test = split
    net = train_recovery(train, train, ONE_EPOCH)
    result = evaluate_recovery(net, test, test, batch_size=5, keep=3)
    with torch.no_grad():
        recovered = net(test)
    np.testing.assert_allclose(result["psnr_per_image"], psnr(recovered, test).double().numpy(), rtol=1e-5)
    np.testing.assert_allclose(result["ssim_per_image"], ssim(recovered, test).double().numpy(), atol=1e-5)
    assert result["count"] == 16 and result["psnr"] == pytest.approx(result["psnr_per_image"].mean())
    torch.testing.assert_close(result["recovered"], recovered[:3], rtol=0, atol=1e-5)
    floor_a = evaluate_recovery(net, None, test, seed=3)
    floor_b = evaluate_recovery(net, None, test, seed=3)
    np.testing.assert_array_equal(floor_a["ssim_per_image"], floor_b["ssim_per_image"])


@pytest.mark.parametrize("size", [(32, 16), (30, 14), (64, 32), (17, 9)])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_unet_shapes_range_and_batch_independence(size, depth):
    net = RecoveryUNet(in_channels=6, width=8, depth=depth).eval()
    x = torch.rand(3, 6, *size)
    with torch.no_grad():
        out = net(x)
        single = net(x[1:2])
    assert out.shape == (3, 3) + size
    assert (out > 0).all() and (out < 1).all()
    torch.testing.assert_close(single, out[1:2], rtol=0, atol=1e-5)


def test_arguments_are_checked(split):
    train, test = split
    with pytest.raises(ValueError, match="6, H, W"):
        RecoveryUNet(in_channels=6)(torch.rand(1, 3, 32, 16))
    with pytest.raises(TypeError, match="AttackSettings"):
        train_recovery(train, train, {"epochs": 1})
    with pytest.raises(ValueError, match="must match"):
        train_recovery(train[:10], train, ONE_EPOCH)
    with pytest.raises(ValueError, match="both noise_train and noise_test"):
        run_attack(train, train, test, test, ONE_EPOCH, noise_train=train)
    with pytest.raises(ValueError, match="not both"):
        train_recovery(train, train, ONE_EPOCH, protect_fn=lambda x: x)
    with pytest.raises(ValueError, match="protected_train or protect_fn"):
        run_attack(None, train, test, test, ONE_EPOCH)
    # a crop larger than the images is clamped to them: (64, 16) on 32x16 images trains on whole images
    whole = train_recovery(train, train, ONE_EPOCH, seed=3).state_dict()
    clamped = train_recovery(train, train, dataclasses.replace(ONE_EPOCH, crop=(64, 16)), seed=3).state_dict()
    assert all(torch.equal(whole[k], clamped[k]) for k in whole)
    with pytest.raises(ValueError, match="width"):
        RecoveryUNet(width=0)


@pytest.mark.gpu
def test_attack_runs_on_cuda(split):
    train, test = split
    result = run_attack(train, train, test, test, attack_preset("tiny", epochs=2), device="cuda")
    assert np.isfinite([result["psnr"], result["ssim"], result["floor_psnr"], result["floor_ssim"]]).all()
    assert result["psnr"] > result["floor_psnr"]
