"""Baselines and ablations: mosaic/blur against independent computations, the generic objective loop against
protect(), AVIH and the Fig. 4 variants on their own terms, and the uniform registries."""
import numpy as np
import pytest
import scipy.ndimage
import torch

import pixelfade_fast as pf
from pixelfade_fast import engine
from pixelfade_fast.evaluation import ablations
from pixelfade_fast.evaluation.ablations import (fade_towards, l1_to_noise, noise_interpolation,
                                                 objective_contrastive, objective_other_identity, objective_zeros,
                                                 random_perturb)
from pixelfade_fast.evaluation.baselines import avih, gaussian_blur, mosaic, pixelfade, total_variation
from pixelfade_fast.evaluation.methods import METHODS
from pixelfade_fast.evaluation.privacy import ssim
from pixelfade_fast.reference import derive_keys, fade_mask_ids, fade_noise
from engine_models import SmallReIDNet, smooth_images

SHORT = pf.FadeConfig(steps=20)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def model():
    return SmallReIDNet()


@pytest.fixture(scope="module")
def images():
    return smooth_images(6, 32, 16, seed=4)


def feature_loss(model, pixels, originals):
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    with torch.no_grad():
        return engine.per_image_loss(model((pixels - mean) / std), model((originals - mean) / std))


@pytest.mark.parametrize("block,size", [(24, (64, 32)), (5, (17, 13)), (4, (8, 8))])
def test_mosaic_equals_block_means(block, size):
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    out = mosaic(images, block)
    for top in range(0, size[0], block):
        for left in range(0, size[1], block):
            tile = images[:, :, top:top + block, left:left + block]
            got = out[:, :, top:top + block, left:left + block]
            torch.testing.assert_close(got, tile.mean(dim=(2, 3), keepdim=True).expand_as(tile), rtol=0, atol=1e-6)
    torch.testing.assert_close(mosaic(images, 1), images)


@pytest.mark.parametrize("radius,size", [(2.5, (20, 14)), (12.0, (64, 32)), (12.0, (32, 16))])
def test_blur_matches_scipy_mirror_filter(radius, size):
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # scipy's 'mirror' mode is reflection without repeating the edge; truncate=3 gives the same 2*ceil(3σ)+1 taps
    expected = scipy.ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, radius, radius), mode="mirror",
                                             truncate=3.0)
    np.testing.assert_allclose(gaussian_blur(images, radius).numpy(), expected, rtol=0, atol=1e-6)


def test_blur_keeps_constants_and_smooths():
    constant = torch.full((1, 3, 40, 20), 0.37)
    torch.testing.assert_close(gaussian_blur(constant, 12), constant, rtol=0, atol=1e-6)
    images = torch.rand(3, 3, 64, 32)
    blurred = gaussian_blur(images, 2.0)
    assert (blurred.flatten(1).var(dim=1) < 0.2 * images.flatten(1).var(dim=1)).all()
    torch.testing.assert_close(blurred.mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)), rtol=0, atol=0.02)


@pytest.mark.parametrize("config", [SHORT, pf.FadeConfig(steps=20, schedule="released", masks="pixel", norm="l2sq"),
                                    pf.FadeConfig(steps=12, init_steps=2, final_steps=3, num_masks=3, clamp="data",
                                                  feature_norm=True, epsilon=0.001)])
def test_fade_towards_eta_is_pixelfade(model, images, config):
    uids = [7, 3, 11, 5, 2, 9]
    expected = pf.protect(model, images, config, uids=uids, seed=21, backend="reference", batch_size=4).images
    eta = fade_noise(derive_keys(21, uids), (3, 32, 16))
    got = fade_towards(model, images, eta, config, 21, space="normalised", uids=uids, batch_size=4)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    interpolated = noise_interpolation(model, images, 1.0, config, 21, uids=uids, batch_size=4)
    torch.testing.assert_close(interpolated, expected, rtol=0, atol=1e-6)


def test_fade_towards_takes_pixel_objectives(model, images):
    """η given in pixel units gives PixelFade's result up to float rounding (the paper schedule's decisions are
    per image, so one rounding difference cannot spread to other images)."""
    uids = [7, 3, 11, 5, 2, 9]
    expected = pf.protect(model, images, SHORT, uids=uids, seed=21, backend="reference", batch_size=4).images
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    eta = fade_noise(derive_keys(21, uids), (3, 32, 16))
    in_pixels = fade_towards(model, images, eta * std + mean, SHORT, 21, uids=uids, batch_size=4)
    torch.testing.assert_close(in_pixels, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("variant", ["other_identity", "zeros", "contrastive", "interpolation"])
def test_objective_is_written_into_the_last_mask(model, images, variant):
    # all-init run of I steps: every mask is replaced once; the last one's elements still hold the objective
    config = pf.FadeConfig(steps=5, init_steps=5, final_steps=0, num_masks=5, finish_steps=0)
    keys = derive_keys(3, range(6))
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    if variant == "other_identity":
        out, objective = objective_other_identity(model, images, config, 3), images.roll(1, dims=0)
    elif variant == "zeros":
        out, objective = objective_zeros(model, images, config, 3), torch.zeros_like(images)
    elif variant == "contrastive":
        out, objective = objective_contrastive(model, images, config, 3), (images < 0.5).float()
    else:
        out = noise_interpolation(model, images, 0.5, config, 3)
        objective = ((0.5 * (images - mean) / std + 0.5 * fade_noise(keys, (3, 32, 16))) * std + mean).clamp(0, 1)
    last = fade_mask_ids(keys, (3, 32, 16), 5, False) == 4
    assert last.float().mean() > 0.1
    torch.testing.assert_close(out[last], objective[last], rtol=0, atol=1e-6)
    assert (out[~last] - objective[~last]).abs().max() > 0.05  # earlier masks moved on under CO


def test_noise_weight_controls_how_much_of_the_image_survives(model, images):
    kept = ssim(noise_interpolation(model, images, 0.0, SHORT, 1), images)
    half = ssim(noise_interpolation(model, images, 0.5, SHORT, 1), images)
    faded = ssim(noise_interpolation(model, images, 1.0, SHORT, 1), images)
    assert (kept > 0.9).all() and (kept > half).all() and (half > faded).all() and (faded < 0.3).all()


def test_random_perturb(model, images):
    small = random_perturb(model, images, 0.1, SHORT, 1)
    large = random_perturb(model, images, 1.0, SHORT, 1)
    assert (ssim(large, images) < ssim(small, images)).all()
    assert (feature_loss(model, small, images) < 0.03).all()
    torch.testing.assert_close(random_perturb(model, images, 1.0, SHORT, 1), large, rtol=0, atol=0)
    assert (random_perturb(model, images, 1.0, SHORT, 2) - large).abs().max() > 0.1
    # keyed noise: an image's result does not depend on the batch it ran in
    part = random_perturb(model, images[[4, 1]], 1.0, SHORT, 1, uids=[4, 1])
    torch.testing.assert_close(part, large[[4, 1]], rtol=0, atol=1e-5)


def test_l1_to_noise_pulls_towards_eta(model, images):
    config = pf.FadeConfig(steps=30, beta=0.05)
    eta = fade_noise(derive_keys(1, range(6)), (3, 32, 16))
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    lo, hi = -mean / std, (1 - mean) / std
    target = torch.maximum(torch.minimum(eta, hi), lo)  # the nearest valid image to η
    distance = {w: ((l1_to_noise(model, images, w, config, 1) - mean) / std - target).abs().mean().item()
                for w in (0.0, 10.0, 1000.0)}
    assert distance[1000.0] < distance[10.0] < distance[0.0], distance
    feature_only = l1_to_noise(model, images, 0.0, config, 1)
    assert (ssim(feature_only, images) > 0.9).all()  # w = 0: CO alone barely touches the image


def test_avih_matches_features_from_noise(model, images):
    start = torch.rand(images.shape, generator=torch.Generator().manual_seed(5))
    out = avih(model, images, steps=40, seed=5)
    assert out.shape == images.shape and (out >= 0).all() and (out <= 1).all()
    before, after = feature_loss(model, start, images), feature_loss(model, out, images)
    assert (after < 0.1 * before).all(), (before, after)
    smoother = avih(model, images, steps=40, seed=5, tv_weight=5.0)
    assert (total_variation(smoother) < total_variation(out)).all()
    torch.testing.assert_close(avih(model, images, steps=40, seed=5, batch_size=4), out, rtol=0, atol=1e-5)


def test_pixelfade_wrapper(model, images):
    expected = pf.protect(model, images, SHORT, seed=4, backend="reference").images
    torch.testing.assert_close(pixelfade(model, images, SHORT, seed=4, backend="reference"), expected)
    released = pixelfade(model, images, SHORT, "released", seed=4, backend="reference")
    assert (released - expected).abs().max() > 0.05


@pytest.mark.parametrize("name", sorted(METHODS))
def test_registry_entries(model, images, name):
    out = METHODS[name].protect(model, images[:3], 8, pf.FadeConfig())
    assert out.shape == (3, 3, 32, 16) and out.dtype == images.dtype
    assert (out >= 0).all() and (out <= 1).all() and torch.isfinite(out).all()
    assert (out - images[:3]).abs().mean() > 0.01
    assert set(METHODS) >= {"pixelfade", "pixelfade_released", "mosaic", "blur", "avih"}


def test_arguments_are_checked(model, images):
    with pytest.raises(ValueError, match="block"):
        mosaic(images, 0)
    with pytest.raises(ValueError, match="radius"):
        gaussian_blur(images, -1.0)
    with pytest.raises(ValueError, match="weight"):
        noise_interpolation(model, images, 1.5)
    with pytest.raises(ValueError, match="amplitude"):
        random_perturb(model, images, -0.1)
    with pytest.raises(ValueError, match="space"):
        fade_towards(model, images, images, space="raw")
    with pytest.raises(ValueError, match="shape"):
        fade_towards(model, images, images[:2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        avih(model, images * 2)
    with pytest.raises(TypeError, match="FadeConfig"):
        objective_zeros(model, images, config={"steps": 3})


@pytest.mark.gpu
def test_fade_towards_eta_is_pixelfade_on_cuda(images):
    model = SmallReIDNet().cuda()
    x = images.cuda()
    expected = pf.protect(model, x, SHORT, seed=21, backend="reference").images
    eta = fade_noise(derive_keys(21, range(6)).cuda(), (3, 32, 16))
    got = fade_towards(model, x, eta, SHORT, 21, space="normalised")
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert mosaic(x).is_cuda and gaussian_blur(x).is_cuda and avih(model, x, steps=5).is_cuda
    assert ablations.random_perturb(model, x, 0.5, SHORT).is_cuda
    assert METHODS["blur"].protect(model, x, 0, SHORT).is_cuda
