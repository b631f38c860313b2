"""FadeConfig: the paper's defaults, and a clear ValueError for every bad value."""
import pytest

from pixelfade_fast import FadeConfig


def test_defaults_are_the_papers():
    cfg = FadeConfig()
    assert (cfg.steps, cfg.init_steps, cfg.final_steps, cfg.num_masks) == (100, 5, 5, 5)
    assert (cfg.epsilon, cfg.alpha, cfg.beta) == (0.03, 0.6, 0.01)
    assert (cfg.schedule, cfg.norm, cfg.masks, cfg.clamp) == ("paper", "l1mean", "element", "pixel")
    assert cfg.finish_steps == 50 and cfg.total_steps == 150 and not cfg.pixel_masks


@pytest.mark.parametrize("field, value, allowed", [
    ("steps", 0, "at least 1"),
    ("steps", 2.5, "integer"),
    ("init_steps", -1, "between 0 and 100"),
    ("final_steps", 96, "between 0 and 95"),
    ("num_masks", 0, "between 1 and 255"),
    ("num_masks", 256, "between 1 and 255"),
    ("epsilon", 0.0, "greater than 0"),
    ("epsilon", float("nan"), "finite"),
    ("alpha", 1.0, "at least 0.0 and below 1.0"),
    ("alpha", -0.1, "at least 0.0 and below 1.0"),
    ("beta", -1e-3, "greater than 0"),
    ("beta_unsat", 0, "greater than 0"),
    ("schedule", "fast", "('paper', 'released')"),
    ("norm", "l2", "('l1mean', 'l2sq')"),
    ("masks", "channel", "('element', 'pixel')"),
    ("clamp", "none", "('pixel', 'data')"),
    ("feature_norm", 1, "True or False"),
    ("finish_steps", -2, "between 0 and 10000"),
    ("steps", True, "integer"),
])
def test_bad_values_name_the_field_and_the_allowed_range(field, value, allowed):
    with pytest.raises(ValueError) as info:
        FadeConfig(**{field: value})
    assert f"FadeConfig.{field}" in str(info.value)
    assert allowed in str(info.value)


def test_hash_depends_on_settings_only():
    assert FadeConfig().config_hash() == FadeConfig().config_hash()
    assert FadeConfig(beta=0.02).config_hash() != FadeConfig().config_hash()
