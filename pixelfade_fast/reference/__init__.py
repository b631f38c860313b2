"""Pure-PyTorch reference of PixelFade: the RNG contract and the three ops, on any device."""
from .ops import NORMS, fade_mask_ids, fade_noise, fade_step_
from .rng import (derive_keys, mask_id_from_word, normal_from_words, philox4x32, splitmix64_int,
                  uniform_from_word)

__all__ = ["NORMS", "derive_keys", "fade_mask_ids", "fade_noise", "fade_step_", "mask_id_from_word",
           "normal_from_words", "philox4x32", "splitmix64_int", "uniform_from_word"]
