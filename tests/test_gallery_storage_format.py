"""Storage formats: the real codec settings, the differentiable JPEG stand-in, and protection whose figures are
those of the decoded file (issue 23)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pixelfade_fast import FadeConfig, StorageFormat, protect, protect_for_storage
from pixelfade_fast.engine import extract_features, per_image_loss
from pixelfade_fast.engine.jpeg_surrogate import JpegSurrogate
from pixelfade_fast.engine.stored import FALLBACK_ROUNDS, ROUND_STEPS, RealCodecEstimate, quality_ladder
from pixelfade_fast.models import build_model
from pixelfade_fast.storage_format import decode, jpeg_tables, round_trip, to_arrays, to_pixels

SIZE = (64, 32)
CONFIG = FadeConfig(steps=12, init_steps=2, final_steps=3, finish_steps=6, quantize=True)


def _model():
    return build_model("tiny_cnn", seed=0, input_size=SIZE)


def _images(count: int = 4, seed: int = 0, size=SIZE) -> torch.Tensor:
    return torch.rand(count, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name, quality, message", [
    ("png", 90, "does not apply to png"), ("jpeg", 0, "between 1 and 100"), ("webp", 101, "between 1 and 100"),
    ("jpeg", True, "between 1 and 100"), ("gif", None, "unknown storage format")])
def test_bad_format_or_quality_is_refused_by_name(name, quality, message):
    with pytest.raises(ValueError, match=message):
        StorageFormat(name, quality)


def test_encoding_is_reproducible_and_decodes_to_the_format():
    array = (_images(1)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    for storage, pil_format in ((StorageFormat("png"), "PNG"), (StorageFormat("jpeg", 80), "JPEG"),
                                (StorageFormat("webp", 80), "WEBP")):
        data = storage.encode(array)
        assert data == storage.encode(array)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == pil_format and image.size == (SIZE[1], SIZE[0])
    assert (decode(StorageFormat("png").encode(array)) == array).all()  # lossless


@pytest.mark.parametrize("size", [SIZE, (40, 24)])  # a multiple of the 16-pixel macroblock, and not
@pytest.mark.parametrize("quality", [50, 90])
def test_jpeg_surrogate_follows_the_real_codec(size, quality):
    pixels = torch.round(_images(3, seed=quality, size=size) * 255) / 255
    real, _ = round_trip(pixels, StorageFormat("jpeg", quality))
    approx = JpegSurrogate(quality)(pixels)
    codec_error = (real - pixels).square().mean().sqrt()
    surrogate_error = (approx - real).square().mean().sqrt()
    assert surrogate_error < 0.1 * codec_error, (surrogate_error, codec_error)
    assert torch.equal(approx, torch.round(approx * 255) / 255)  # 8-bit, like a decoded file
    leaf = pixels.clone().requires_grad_(True)
    JpegSurrogate(quality)(leaf).square().sum().backward()
    assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0


def test_png_storage_is_protect_bit_for_bit():
    model, images = _model(), _images()
    stored = protect_for_storage(model, images, StorageFormat("png"), CONFIG, seed=1, backend="reference",
                                 progress=False)
    plain = protect(model, images, CONFIG, seed=1, backend="reference", progress=False)
    assert torch.equal(stored.images, plain.images) and torch.equal(stored.final_loss, plain.final_loss)
    assert (np.stack([decode(f) for f in stored.files]) == to_arrays(plain.images)).all()


def _decoded_loss(model, images, files) -> torch.Tensor:
    return per_image_loss(extract_features(model, to_pixels([decode(f) for f in files])),
                          extract_features(model, images))


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_lossy_figures_are_those_of_the_decoded_files(name):
    model, images = _model(), _images()
    stored = protect_for_storage(model, images, StorageFormat(name, 85), CONFIG, seed=1, backend="reference",
                                 progress=False)
    torch.testing.assert_close(stored.final_loss, _decoded_loss(model, images, stored.files), rtol=1e-5, atol=1e-7)
    assert torch.equal(stored.images, to_pixels([decode(f) for f in stored.files]))


def test_codec_aware_jpeg_meets_epsilon_where_storing_the_png_as_jpeg_does_not():
    model, images = _model(), _images(6)
    plain = protect(model, images, CONFIG, seed=1, backend="reference", progress=False)
    naive_files = [StorageFormat("jpeg", 90).encode(a) for a in
                   (plain.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()]
    naive_met = (_decoded_loss(model, images, naive_files) < plain.epsilon).float().mean()
    aware = protect_for_storage(model, images, StorageFormat("jpeg", 90), CONFIG, seed=1, backend="reference",
                                progress=False, fallback_rounds=0)
    assert aware.quality == [90] * 6  # no fallback: every figure is the codec-aware closing steps'
    assert aware.met_epsilon.float().mean() == 1.0 > naive_met


# finish_steps=0: the loop does not chase ε, so files miss it and the fallback has work
LOOSE = FadeConfig(steps=12, init_steps=2, final_steps=3, finish_steps=0, quantize=True, epsilon=0.005)


@pytest.mark.parametrize("storage", [StorageFormat("jpeg", 50), StorageFormat("webp", 90)])
def test_real_codec_rounds_bring_missed_files_under_epsilon(storage):
    model, images = _model(), _images()
    without = protect_for_storage(model, images, storage, LOOSE, seed=1, backend="reference", progress=False,
                                  fallback_rounds=0)
    assert not without.met_epsilon.all()  # missed even after the quality ladder
    stored = protect_for_storage(model, images, storage, LOOSE, seed=1, backend="reference", progress=False)
    assert stored.met_epsilon.all()
    # the figures are the real decoded files'; the loop is the same, so a file met without rounds is unchanged
    torch.testing.assert_close(stored.final_loss, _decoded_loss(model, images, stored.files), rtol=1e-5, atol=1e-7)
    for row, met in enumerate(without.met_epsilon.tolist()):
        if met:
            assert stored.files[row] == without.files[row] and stored.fallback_steps[row] == 0
        else:
            assert stored.fallback_steps[row] in range(ROUND_STEPS, FALLBACK_ROUNDS * ROUND_STEPS + 1, ROUND_STEPS)


@pytest.mark.parametrize("storage", [StorageFormat("jpeg", 88), StorageFormat("webp", 88)])
def test_fallback_is_bounded_takes_rounds_then_a_higher_quality_and_records_both(storage, monkeypatch):
    model, images = _model(), _images(3)
    strict = FadeConfig(steps=8, init_steps=2, final_steps=2, finish_steps=0, quantize=True, epsilon=1e-6)
    measured = []
    original = RealCodecEstimate.measure
    monkeypatch.setattr(RealCodecEstimate, "measure",
                        lambda self, pixels, decoded: measured.append(len(pixels)) or original(self, pixels, decoded))
    stored = protect_for_storage(model, images, storage, strict, seed=2, backend="reference", progress=False,
                                 fallback_rounds=2)
    assert quality_ladder(storage) == [93, 98] and FALLBACK_ROUNDS > 0
    assert not stored.met_epsilon.any()  # ε this small is out of reach: every image took the whole fallback
    assert measured == [3, 3]  # two rounds, each of every image: the bound
    assert set(stored.fallback_steps) <= {0, ROUND_STEPS, 2 * ROUND_STEPS}  # the rounds behind each kept file
    for data, quality in zip(stored.files, stored.quality):
        assert quality in (88, 93, 98)
        if storage.name == "jpeg":
            with Image.open(io.BytesIO(data)) as image:  # the file is encoded at the quality recorded
                assert (tuple(image.quantization[0]), tuple(image.quantization[1])) == jpeg_tables(quality)
    torch.testing.assert_close(stored.final_loss, _decoded_loss(model, images, stored.files), rtol=1e-5, atol=1e-7)


def test_the_real_codec_estimate_has_the_files_value_and_the_stand_ins_gradient():
    pixels = (_images(2) * 255).round() / 255
    stand_in = JpegSurrogate(75)
    decoded, _ = round_trip(pixels, StorageFormat("jpeg", 75))
    estimate = RealCodecEstimate(stand_in)
    estimate.measure(pixels, decoded)
    assert torch.allclose(estimate(pixels), decoded, atol=1e-6)
    assert not torch.allclose(stand_in(pixels), decoded, atol=1e-6)  # the stand-in alone is not the file
    weights = torch.randn(pixels.shape, generator=torch.Generator().manual_seed(3))
    grads = []
    for fn in (estimate, stand_in):
        leaf = pixels.clone().requires_grad_(True)
        (fn(leaf) * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1]) and grads[0].abs().sum() > 0
