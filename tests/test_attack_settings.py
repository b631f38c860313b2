"""AttackSettings and its presets (validation, clear errors), the pair augmentations (aligned, exact), the
learning-rate schedules, and that on-the-fly pairs from a black box train like stored ones."""
import dataclasses

import pytest
import torch

from pixelfade_fast.evaluation import attack
from pixelfade_fast.evaluation.attack import _optimiser, run_attack, score_images
from pixelfade_fast.evaluation.attack_settings import ATTACK_PRESETS, attack_preset
from pixelfade_fast.evaluation.augment import (Geometry, apply_crops, apply_geometry, colour_jitter, crop_size,
                                               draw_crops, draw_geometry)
from pixelfade_fast.evaluation.baselines import gaussian_blur
from pixelfade_fast.evaluation.leakage import best_of
from pixelfade_fast.evaluation.unet import RecoveryUNet
from engine_models import smooth_images


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def mean_floor(train: torch.Tensor, test: torch.Tensor) -> dict:
    """The floor's information-free mean-image attacker alone (no noise U-Net to train: these tests are fast)."""
    return best_of({"mean": score_images(train.mean(dim=0, keepdim=True), test)})


def test_presets_are_valid_and_grow():
    assert set(ATTACK_PRESETS) == {"tiny", "demo", "strong"}
    tiny, demo, strong = (ATTACK_PRESETS[name] for name in ("tiny", "demo", "strong"))
    for preset in (tiny, demo, strong):
        assert dataclasses.replace(preset) == preset  # re-validates
        assert preset.describe().startswith(f"U-Net width {preset.width}, depth {preset.depth}")
    # strong: every training image, a deeper net, augmentation; the small ones cap their pairs
    assert strong.max_pairs is None and "every training image" in strong.describe()
    assert tiny.max_pairs == demo.max_pairs == 64 and strong.depth > demo.depth and strong.blocks > demo.blocks
    assert strong.flip and strong.crop == (128, 64) and "random 128x64 crops" in strong.describe()
    assert attack_preset("strong", epochs=3) == dataclasses.replace(strong, epochs=3)


@pytest.mark.parametrize("overrides, message", [
    (dict(width=0), "width must be an integer >= 1"),
    (dict(epochs=2.5), "epochs must be an integer"),
    (dict(max_pairs=0), "max_pairs must be a positive integer or None"),
    (dict(optimiser="sgd"), "optimiser must be one of"),
    (dict(schedule="step"), "schedule must be one of"),
    (dict(loss="l2"), "loss must be one of"),
    (dict(lr=0.0), "lr must be a number > 0"),
    (dict(warmup=1.0), "warmup must be a number > 0.0 and < 1.0"),
    (dict(colour_jitter=-0.1), "colour_jitter must be a number >= 0.0"),
    (dict(crop=(0, 8)), "crop must be None or"),
    (dict(crop=(8,)), "crop must be None or"),
    (dict(flip=1), "flip must be True or False"),
    (dict(optimiser="adam", weight_decay=0.1), "weight_decay needs optimiser='adamw'"),
    (dict(loss="l1+ssim", ssim_weight=0.0), "needs ssim_weight > 0"),
    (dict(loss="l1", ssim_weight=0.5), "needs ssim_weight > 0 and loss 'l1' needs ssim_weight 0"),
])
def test_bad_settings_say_what_is_wrong(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        attack_preset("tiny", **overrides)


def test_unknown_presets_and_fields_are_named():
    with pytest.raises(ValueError, match="unknown attack preset 'huge'; choose from tiny, demo, strong"):
        attack_preset("huge")
    with pytest.raises(ValueError, match=r"unknown AttackSettings fields \['widht'\]"):
        attack_preset("tiny", widht=8)
    assert attack_preset("tiny", crop=[16, 8]).crop == (16, 8)  # a list from JSON becomes a tuple


def test_geometry_moves_every_tensor_of_a_pair_alike():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).reshape(2, 1, 4, 6)
    geometry = Geometry(flip=torch.tensor([True, False]), shift=torch.tensor([[0, 0], [1, -2]]))
    out = apply_geometry(x, geometry)
    torch.testing.assert_close(out[0], x[0].flip(2))
    # image 1 moved down 1 and left 2: out[r, c] = x[r - 1, c + 2] inside, edge pixels repeated outside
    torch.testing.assert_close(out[1, 0, 1:, :4], x[1, 0, :3, 2:])
    torch.testing.assert_close(out[1, 0, 0, :4], x[1, 0, 0, 2:])
    torch.testing.assert_close(out[1, 0, 1:, 4:], x[1, 0, :3, 5:].expand(3, 2))
    pair = torch.cat([x, 2 * x], dim=1)  # a pair stacked on channels stays a pair
    moved = apply_geometry(pair, geometry)
    torch.testing.assert_close(moved[:, 1:], 2 * moved[:, :1])
    generator = torch.Generator().manual_seed(0)
    drawn = draw_geometry(64, flip=True, max_shift=3, generator=generator)
    assert 10 < int(drawn.flip.sum()) < 54 and int(drawn.shift.abs().max()) == 3
    still = draw_geometry(4, flip=False, max_shift=0, generator=generator)
    torch.testing.assert_close(apply_geometry(x[:1].expand(4, -1, -1, -1), still), x[:1].expand(4, -1, -1, -1))


def test_crops_and_colour_jitter():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, 20, 10, generator=generator)
    corners = draw_crops(5, (20, 10), (8, 4), generator)
    assert corners.shape == (5, 2) and (corners[:, 0] <= 12).all() and (corners[:, 1] <= 6).all()
    crops = apply_crops(x, corners, (8, 4))
    for i, (r, c) in enumerate(corners.tolist()):
        torch.testing.assert_close(crops[i], x[i, :, r:r + 8, c:c + 4])
    assert draw_crops(5, (20, 10), None, generator) is None and apply_crops(x, None, None) is x
    assert crop_size((20, 10), (8, 12)) == (8, 10) and crop_size((20, 10), (30, 12)) is None
    assert crop_size((20, 10), None) is None and crop_size((20, 10), (8, 4)) == (8, 4)
    jittered = colour_jitter(x, 0.3, generator)
    assert jittered.min() >= 0 and jittered.max() <= 1 and not torch.equal(jittered, x)
    assert colour_jitter(x, 0.0, generator) is x
    # per image and channel an affine map x -> a x + b, a in [0.9, 1.1], b in [-0.05, 0.05] (no clipping here)
    mid = 0.3 + 0.4 * x
    out = colour_jitter(mid, 0.1, generator)
    flat_in, flat_out = mid.flatten(2), out.flatten(2)
    gain = ((flat_out[..., 1:] - flat_out[..., :1]) / (flat_in[..., 1:] - flat_in[..., :1]))
    assert float(gain.std(dim=2).max()) < 1e-3 and 0.9 <= float(gain.mean(dim=2).min())
    assert float(gain.mean(dim=2).max()) <= 1.1
    offset = flat_out[..., 0] - gain.mean(dim=2) * flat_in[..., 0]
    assert float(offset.abs().max()) <= 0.05 + 1e-4


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "constant"])
def test_learning_rate_schedules(schedule):
    settings = attack_preset("tiny", schedule=schedule, warmup=0.2, lr=1e-2, optimiser="adamw", weight_decay=1e-4)
    net = RecoveryUNet(width=4, depth=1)
    optimiser, scheduler = _optimiser(net, settings, total_steps=50)
    rates = []
    for _ in range(50):
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        scheduler.step()
    peak = max(range(50), key=rates.__getitem__)
    assert max(rates) == pytest.approx(1e-2, rel=1e-3)
    if schedule == "constant":
        assert min(rates) == pytest.approx(1e-2)
    else:
        assert 5 <= peak <= 10, peak  # warm-up over the first 20%
        assert rates[0] <= 0.1 * max(rates) and rates[-1] < 0.05 * max(rates)
    assert isinstance(optimiser, torch.optim.AdamW)


class RecordingUNet(RecoveryUNet):
    """Keeps every batch the network is trained on."""

    seen: list = []

    def forward(self, x):
        if self.training:
            RecordingUNet.seen.append(x.detach().clone())
        return super().forward(x)


@pytest.mark.parametrize("source", ["on the fly", "stored"])
def test_every_training_input_is_aligned_with_its_original(source, monkeypatch):
    """With an identity black box, each augmented (flipped, shifted, cropped, jittered) input must equal its
    target exactly: any misalignment between the two sides of a pair would show here."""
    images = smooth_images(20, 32, 16, seed=6)
    targets, calls = [], []
    monkeypatch.setattr(attack, "RecoveryUNet", RecordingUNet)
    monkeypatch.setattr(RecordingUNet, "seen", [])
    real_loss = attack._loss
    monkeypatch.setattr(attack, "_loss", lambda out, target, s: targets.append(target.clone()) or real_loss(out, target, s))

    def identity(batch):
        calls.append(tuple(batch.shape))
        return batch

    settings = attack_preset("tiny", epochs=2, flip=True, shift=3, crop=(24, 12), input_skip=True,
                             colour_jitter=0.2 if source == "on the fly" else 0.0, loss="l1+ssim", ssim_weight=0.2)
    if source == "on the fly":
        attack.train_recovery(None, images, settings, protect_fn=identity)
        assert calls and all(shape[2:] == (32, 16) for shape in calls)  # protected whole, cropped after
    else:
        attack.train_recovery(images, images, settings)
    assert len(targets) == len(RecordingUNet.seen) == 2 * 3  # 2 epochs of ceil(20 / 8) batches
    for inputs, target in zip(RecordingUNet.seen, targets):
        assert inputs.shape[2:] == (24, 12)
        torch.testing.assert_close(inputs, target, rtol=0, atol=0)
    flipped_or_moved = [not any(torch.equal(t[i], images[j, :, r:r + 24, c:c + 12]) for j in range(20)
                                for r in range(9) for c in range(5)) for t in targets for i in range(t.shape[0])]
    assert sum(flipped_or_moved) > len(flipped_or_moved) // 4  # the augmentations did act


def test_blur_is_recovered_above_the_floor_by_the_tiny_attack():
    images = smooth_images(80, 32, 16, seed=7)
    train, test = images[:64], images[64:]
    settings = attack_preset("tiny", epochs=6, flip=True)
    floor = mean_floor(train, test)
    blur = lambda x: gaussian_blur(x, radius=2.0)  # noqa: E731
    result = run_attack(None, train, blur(test), test, settings, floor=floor, protect_fn=blur)
    assert result["unet_leakage_psnr"] > 1.0 and result["leakage_ssim"] > 0.1, result["attackers"]
