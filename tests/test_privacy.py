"""PSNR / SSIM / Anderson–Darling: against hand computations, an independent numpy SSIM loop, and scipy."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from pixelfade_fast.evaluation import privacy
from pixelfade_fast.evaluation.privacy import anderson_darling, anderson_darling_summary, psnr, ssim, to_normalised
from engine_models import SmallReIDNet


def numpy_ssim(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM of one image pair [C, H, W], window by window (valid positions only), straight from Wang et al."""
    taps = np.arange(size) - (size - 1) / 2
    g = np.exp(-taps ** 2 / (2 * sigma ** 2))
    weights = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for channel in range(a.shape[0]):
        for top in range(a.shape[1] - size + 1):
            for left in range(a.shape[2] - size + 1):
                pa = a[channel, top:top + size, left:left + size]
                pb = b[channel, top:top + size, left:left + size]
                mu_a, mu_b = (weights * pa).sum(), (weights * pb).sum()
                var_a = (weights * (pa - mu_a) ** 2).sum()
                var_b = (weights * (pb - mu_b) ** 2).sum()
                cov = (weights * (pa - mu_a) * (pb - mu_b)).sum()
                values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                              / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_psnr_of_a_known_mse():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 20, 12, generator=generator)
    offsets = torch.tensor([0.1, 0.01, 0.3]).reshape(3, 1, 1, 1)
    expected = torch.tensor([20.0, 40.0, -20 * math.log10(0.3)])
    torch.testing.assert_close(psnr(a, a + offsets), expected, rtol=0, atol=1e-4)
    b = torch.rand(3, 3, 20, 12, generator=generator)
    mse = ((a.double() - b.double()) ** 2).reshape(3, -1).mean(1)
    torch.testing.assert_close(psnr(a, b).double(), 10 * torch.log10(1 / mse), rtol=0, atol=1e-4)


def test_psnr_of_identical_images_is_capped():
    a = torch.rand(2, 3, 16, 16)
    assert psnr(a, a).tolist() == [100.0, 100.0]
    assert psnr(a, a, max_db=60.0).tolist() == pytest.approx([60.0, 60.0])


def test_ssim_matches_an_independent_window_loop():
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 15, 13, generator=generator, dtype=torch.float64)
    b = (0.6 * a + 0.4 * torch.rand(2, 3, 15, 13, generator=generator, dtype=torch.float64)).clamp(0, 1)
    b[1] = torch.rand(3, 15, 13, generator=generator, dtype=torch.float64)  # an unrelated pair too
    expected = torch.tensor([numpy_ssim(a[i].numpy(), b[i].numpy()) for i in range(2)], dtype=torch.float64)
    torch.testing.assert_close(ssim(a, b), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(ssim(a.float(), b.float()).double(), expected, rtol=0, atol=2e-5)


def test_ssim_identity_symmetry_bounds_and_order():
    generator = torch.Generator().manual_seed(2)
    a = torch.rand(4, 3, 32, 16, generator=generator)
    torch.testing.assert_close(ssim(a, a), torch.ones(4), rtol=0, atol=1e-5)
    noisy = [(a + s * torch.randn(a.shape, generator=generator)).clamp(0, 1) for s in (0.05, 0.2, 0.5)]
    scores = [ssim(a, n) for n in noisy]
    assert (scores[0] > scores[1]).all() and (scores[1] > scores[2]).all()
    for b in noisy + [1 - a]:
        torch.testing.assert_close(ssim(a, b), ssim(b, a), rtol=0, atol=1e-6)
        torch.testing.assert_close(psnr(a, b), psnr(b, a), rtol=0, atol=0)
        assert (ssim(a, b).abs() <= 1).all()
    assert (ssim(a, 1 - a) < 0).all()  # the negative of an image is anti-correlated with it


def test_metric_arguments_are_checked():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, a[:1])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:, :, :10], a[:, :, :10])
    with pytest.raises(ValueError, match="rank 4"):
        psnr(a[0], a[0])
    with pytest.raises(TypeError, match="float"):
        psnr((a * 255).to(torch.uint8), (a * 255).to(torch.uint8))


def test_anderson_darling_equals_scipy(monkeypatch):
    generator = torch.Generator().manual_seed(3)
    images = torch.stack([
        torch.randn(3, 24, 12, generator=generator),  # normal: small A²
        torch.randn(3, 24, 12, generator=generator).abs(),  # half-normal
        torch.rand(3, 24, 12, generator=generator),  # uniform
        torch.randn(3, 24, 12, generator=generator) * 2 + 5,  # normal with another mean/std: same A² scale
    ])
    expected = [scipy.stats.anderson(img.double().numpy().ravel(), "norm", method="interpolate").statistic
                for img in images]
    values = anderson_darling(images)
    assert values.dtype == torch.float64
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-9, atol=1e-9)
    assert values[0] < 1.5 and values[3] < 1.5 and values[1] > 5 and values[2] > 5
    monkeypatch.setattr(privacy, "AD_CHUNK_ELEMENTS", 2 * images[0].numel())  # several chunks, same answer
    np.testing.assert_allclose(anderson_darling(images).numpy(), expected, rtol=1e-9, atol=1e-9)


def test_anderson_darling_summary_states_the_sample_size():
    images = torch.randn(3, 3, 16, 8)
    summary = anderson_darling_summary(images)
    assert summary["sample_size"] == 3 * 16 * 8
    assert summary["per_image"].shape == (3,)
    assert summary["mean"] == pytest.approx(float(np.mean(summary["per_image"])))
    assert math.isnan(float(anderson_darling(torch.ones(1, 3, 4, 4))[0]))  # no fitted std
    with pytest.raises(ValueError, match="at least 2 values"):
        anderson_darling(torch.ones(2, 1))


def test_to_normalised_uses_the_model_statistics():
    model = SmallReIDNet()
    pixels = torch.rand(2, 3, 8, 4)
    mean = torch.tensor(model.mean).reshape(1, 3, 1, 1)
    std = torch.tensor(model.std).reshape(1, 3, 1, 1)
    torch.testing.assert_close(to_normalised(pixels, model), (pixels - mean) / std)
    torch.testing.assert_close(to_normalised(pixels, torch.nn.Identity()), pixels)


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu():
    a = torch.rand(6, 3, 64, 32)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    torch.testing.assert_close(ssim(a.cuda(), b.cuda()).cpu(), ssim(a, b), rtol=0, atol=1e-5)
    torch.testing.assert_close(psnr(a.cuda(), b.cuda()).cpu(), psnr(a, b), rtol=0, atol=1e-4)
    torch.testing.assert_close(anderson_darling(b.cuda()).cpu(), anderson_darling(b), rtol=1e-9, atol=1e-9)
