"""InputSpace: the maps between pixels and a model's input, its bounds and 8-bit rounding, on random values."""
import json

import pytest
import torch
from torch import nn

from pixelfade_fast.input_space import IMAGENET_MEAN, IMAGENET_STD, InputSpace
from pixelfade_fast.models import FeatureExtractor, build_model


def _random_space(channels: int, seed: int) -> InputSpace:
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand(channels, generator=generator)
    std = 0.05 + torch.rand(channels, generator=generator)
    return InputSpace(tuple(mean.tolist()), tuple(std.tolist()))


@pytest.mark.parametrize("channels, seed", [(3, 0), (3, 1), (1, 2)])
def test_maps_and_bounds_follow_the_formulas(channels, seed):
    space = _random_space(channels, seed)
    mean = torch.tensor(space.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(space.std).reshape(1, -1, 1, 1)
    pixels = torch.rand(4, channels, 6, 5, generator=torch.Generator().manual_seed(seed + 10))
    x = space.normalise(pixels)
    assert torch.equal(x, (pixels - mean) / std)
    torch.testing.assert_close(space.to_pixels(x), pixels)
    lo, hi = space.bounds("cpu")
    assert torch.equal(lo, (-mean / std).reshape(-1)) and torch.equal(hi, ((1 - mean) / std).reshape(-1))
    torch.testing.assert_close(space.normalise(torch.zeros(1, channels, 1, 1)).reshape(-1), lo)
    torch.testing.assert_close(space.normalise(torch.ones(1, channels, 1, 1)).reshape(-1), hi)
    outside = x + 10 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    back = space.to_pixels(outside)
    assert back.min() >= 0 and back.max() <= 1 and (back == 0).any() and (back == 1).any()


def test_quantised_lies_on_the_8bit_grid_and_rounds_to_the_nearest_level():
    space = _random_space(3, 4)
    x = 2 * torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    pixels = space.to_pixels(space.quantised(x)) * 255
    torch.testing.assert_close(pixels, pixels.round(), rtol=0, atol=2e-3)
    expected = (space.to_pixels(x.clone()) * 255).round()
    assert (pixels.round() - expected).abs().max() <= 1  # the nearest level, up to float rounding at a half
    assert (pixels.round() == expected).float().mean() > 0.99
    assert torch.equal(space.quantised(space.quantised(x)), space.quantised(x))


def test_of_reads_the_model_attributes_else_the_identity():
    assert InputSpace.of(nn.Linear(2, 2)) == InputSpace.identity(3) == InputSpace((0, 0, 0), (1, 1, 1))
    model = build_model("tiny_cnn", seed=0, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert InputSpace.of(model) == model.input_space
    torch.testing.assert_close(torch.tensor(model.input_space.mean), torch.tensor([0.1, 0.2, 0.3]))
    grey = FeatureExtractor(nn.Flatten(), (4, 4), mean=(0.5,), std=(0.25,))
    assert grey.input_space == InputSpace((0.5,), (0.25,))
    with pytest.raises(ValueError, match="1/1 entries, images have 3 channels"):
        InputSpace.of(grey, 3)
    default = build_model("tiny_cnn", seed=0).input_space
    assert default.to_json() == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


@pytest.mark.parametrize("mean, std", [((0.5, 0.5, 0.5), (0.2, 0.0, 0.2)), ((0.5, 0.5), (0.2, 0.2, 0.2)),
                                       ((), ()), ((0.5, float("nan"), 0.5), (1, 1, 1)), (("a",), (1,)),
                                       ((0.5,), (-1.0,))])
def test_bad_values_are_refused_with_what_to_give(mean, std):
    with pytest.raises(ValueError, match="std must be positive per channel"):
        InputSpace(mean, std)


def test_models_refuse_a_bad_input_space():
    with pytest.raises(ValueError, match="std must be positive"):
        build_model("tiny_cnn", std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="3 per-channel"):
        build_model("tiny_cnn", mean=(0.5,), std=(0.2,))


def test_json_form_is_what_a_run_record_keeps():
    space = _random_space(3, 7)
    record = json.loads(json.dumps(space.to_json()))
    assert record == {"mean": [round(v, 6) for v in space.mean], "std": [round(v, 6) for v in space.std]}
    assert InputSpace(record["mean"], record["std"]).to_json() == record


def test_device_constants_are_made_once_and_values_compare_by_value():
    space = InputSpace([0.5, 0.25, 0.125], [1, 2, 4])
    assert space.constants("cpu")[0] is space.constants(torch.device("cpu"))[0]
    assert space == InputSpace((0.5, 0.25, 0.125), (1.0, 2.0, 4.0)) and hash(space) == hash(InputSpace(
        (0.5, 0.25, 0.125), (1.0, 2.0, 4.0)))
