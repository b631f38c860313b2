"""pixelfade_fast.compat.released: the authors' interface on our engine (issue 24).

Two claims: it gives exactly what our ``schedule="released"`` gives through ``protect()``, and it follows their
step rule, checked against a loop written here from the description of their code and the paper.
"""
import argparse

import pytest
import torch
from torch import nn

from pixelfade_fast import protect
from pixelfade_fast.compat import OPTION_DEFAULTS, PixelFade, config_from_options, released_options
from pixelfade_fast.input_space import InputSpace
from pixelfade_fast.reference import fade_mask_ids, fade_noise
from pixelfade_fast.reference.rng import derive_keys

from engine_models import SmallReIDNet, smooth_images


def toy_model() -> nn.Module:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(),
                          nn.Linear(32, 6))
    torch.random.set_rng_state(generator_state)
    return model


def their_step_rule(model, data, noise, mask_ids, *, max_iter, warmup_iter, fade_num_iter, epsilon, beta,
                    beta_temp, momentum_w):
    """Their loop as the description states it: each step first replaces the masked elements by the noise
    (during the warm-up, or after a step whose batch-mean loss was below ε), then measures the batch-mean loss,
    normalises the gradient by each image's mean |g|, adds it to the momentum, steps by beta below ε and
    beta_temp otherwise and in the last 5 steps, and clamps to the batch's min and max.
    Returns the images and, per step, (loss, below ε)."""
    low, high = data.min(), data.max()
    with torch.no_grad():
        clean = model(data)
    x, momentum, below, trace = data.clone(), torch.zeros_like(data), True, []
    for step in range(max_iter):
        if step < warmup_iter or below:
            x = torch.where(mask_ids == step % fade_num_iter, noise, x)
        leaf = x.detach().requires_grad_(True)
        loss = (model(leaf) - clean).square().mean()
        (grad,) = torch.autograd.grad(loss, leaf)
        momentum = momentum_w * momentum + grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True)
        below = bool(loss < epsilon) and step < max_iter - 5
        x = (x - (beta if below else beta_temp) * momentum).clamp(low, high).detach()
        trace.append((float(loss.detach()), below))
    return x, trace


def test_follows_their_step_rule():
    model = toy_model()
    data = torch.randn(3, 3, 8, 4, generator=torch.Generator().manual_seed(1))
    data[0, 0, 0, 0], data[1, 1, 1, 1] = -6.0, 6.0  # a range the noise stays inside (see below)
    options = dict(max_iter=14, warmup_iter=3, fade_num_iter=3, epsilon=0.0135, beta=0.01, beta_temp=0.04,
                   momentum_w=0.6)
    keys = derive_keys(5, range(3))
    noise = fade_noise(keys, data.shape[1:])
    mask_ids = fade_mask_ids(keys, data.shape[1:], options["fade_num_iter"], False)
    # Their replacement is clamped only at the next step's end, ours at once: equal while the noise is in range.
    assert float(noise.abs().max()) < 6.0
    expected, trace = their_step_rule(model, data, noise, mask_ids, **options)
    # The run crosses ε both ways after the warm-up, and no loss sits so near ε that rounding could flip a decision.
    main = [below for _, below in trace[options["warmup_iter"]:options["max_iter"] - 5]]
    assert any(main) and not all(main)
    assert min(abs(loss - options["epsilon"]) for loss, _ in trace) > 0.02 * options["epsilon"]

    compat = PixelFade(released_options(**options), None, (8, 4), seed=5, backend="reference")
    protected, features = compat.protect_image(model, data)
    torch.testing.assert_close(protected, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(features, model(protected).detach(), rtol=0, atol=1e-6)
    assert not torch.equal(protected, data)


@pytest.mark.parametrize("backend", ["reference", "cpp"])
def test_gives_what_protect_gives_with_the_released_config(backend):
    """Batch after batch (the first larger than opt.batch_size, the second smaller than the first), the images
    equal protect()'s with the compat config, the same seed and the same batches, bit for bit."""
    model = SmallReIDNet(feature_dim=32)
    pixels = smooth_images(7, 32, 16, seed=3)
    space = InputSpace.of(model)
    data = space.normalise(pixels)
    compat = PixelFade(released_options(max_iter=10, warmup_iter=2, fade_num_iter=3, batch_size=3), None, (32, 16),
                       seed=21, backend=backend)
    first, first_features = compat.protect_image(model, data[:4])
    second, second_features = compat.protect_image(model, data[4:])
    result = protect(model, pixels, compat.config, seed=21, batch_size=4, backend=backend)
    assert compat.config.schedule == "released"
    assert torch.equal(space.to_pixels(torch.cat([first, second])), result.images)
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([first_features, second_features]),
                                   model(torch.cat([first, second])), rtol=1e-5, atol=1e-5)
    assert first.device.type == "cpu" and not first.requires_grad
    assert all(p.requires_grad for p in model.parameters()) and model.training  # restored after the call


def test_their_options_and_defaults():
    assert OPTION_DEFAULTS == {"max_iter": 100, "fade_num_iter": 5, "warmup_iter": 5, "epsilon": 0.03, "beta": 0.01,
                               "beta_temp": 0.04, "momentum_w": 0.6, "batch_size": 20}
    config = config_from_options(argparse.Namespace(max_iter=100))  # the rest missing: their defaults
    assert (config.steps, config.init_steps, config.final_steps, config.finish_steps) == (101, 5, 5, 0)
    assert (config.num_masks, config.epsilon, config.alpha, config.beta, config.beta_unsat) == (5, 0.03, 0.6, 0.01,
                                                                                                0.04)
    assert (config.schedule, config.clamp, config.norm, config.masks, config.epsilon_scale) == (
        "released", "data", "l1mean", "element", "absolute")
    short = config_from_options(released_options(max_iter=3, warmup_iter=1))
    assert (short.steps, short.init_steps, short.final_steps) == (4, 1, 3)


@pytest.mark.parametrize("options, message", [
    (dict(max_iter=0), "opt.max_iter must be at least 1"),
    (dict(fade_num_iter=0), "opt.fade_num_iter must be at least 1"),
    (dict(momentum_w=1.0), "opt.momentum_w must be at least 0.0 and below 1.0"),
    (dict(epsilon=-0.1), "opt.epsilon must be above 0.0"),
    (dict(beta_temp="0.04"), "opt.beta_temp must be a finite number"),
    (dict(beta=float("nan")), "opt.beta must be a finite number"),
    (dict(warmup_iter=2.0), "opt.warmup_iter must be an integer"),
    (dict(max_iter=10, warmup_iter=7), "opt.warmup_iter (7) must be at most 6"),
])
def test_bad_options_name_their_option(options, message):
    with pytest.raises(ValueError) as error:
        PixelFade(released_options(**options), None, (8, 4))
    assert message in str(error.value)


def test_bad_calls_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown option"):
        released_options(num_masks=5)
    compat = PixelFade(released_options(max_iter=6, warmup_iter=1), None, (8, 4), seed=1)
    with pytest.raises(ValueError, match="built for data_shape 8x4"):
        compat.protect_image(toy_model(), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        compat.protect_image(toy_model(), torch.zeros(3, 8, 4))
    with pytest.raises(TypeError, match="floating point"):
        compat.protect_image(toy_model(), torch.zeros(2, 3, 8, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"data_shape must be the images' \(H, W\)"):
        PixelFade(released_options(), None, (3, 8, 4))
