"""The input space of a feature model: x = (pixel - mean) / std per channel, for pixels in [0, 1].

One object holds what the engine, the models, the metrics and the gallery's run record need of it: the
per-channel mean and std, the bounds of valid pixels in x, the maps between pixels and x, and the rounding of x
to the 8-bit pixel grid. A leaf module (torch only), so that both the engine and the models import it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RECORD_DIGITS = 6  # decimals of mean/std in a run record (to_json)


@dataclass(frozen=True)
class InputSpace:
    """Per-channel ``mean`` and ``std`` (std > 0) of a model's input x = (pixel - mean) / std.

    Every computation runs in float32 on the tensor's device; the [1, C, 1, 1] constants are made once per
    device, so nothing in a loop copies from the host.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    _constants: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        except (TypeError, ValueError):
            mean = std = ()
        if (not mean or len(mean) != len(std) or not all(map(math.isfinite, mean + std))
                or not all(s > 0 for s in std)):
            raise ValueError(f"mean and std must be per-channel lists of finite numbers, of one length, and std must "
                             f"be positive per channel; got mean={self.mean!r}, std={self.std!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def identity(cls, channels: int = 3) -> InputSpace:
        """Pixels go in unchanged (mean 0, std 1)."""
        return cls((0.0,) * channels, (1.0,) * channels)

    @classmethod
    def of(cls, model: nn.Module, channels: int = 3) -> InputSpace:
        """The space of ``model``'s ``mean`` / ``std`` attributes (per-channel, any shape), else the identity."""
        mean, std = getattr(model, "mean", None), getattr(model, "std", None)
        if mean is None or std is None:
            return cls.identity(channels)
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1).tolist()
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1).tolist()
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"the model's mean/std have {len(mean)}/{len(std)} entries, images have {channels} "
                             f"channels")
        return cls(tuple(mean), tuple(std))

    @property
    def channels(self) -> int:
        return len(self.mean)

    def constants(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) as float32 [1, C, 1, 1] tensors on ``device``."""
        device = torch.device(device)
        if device not in self._constants:
            self._constants[device] = tuple(torch.tensor(v, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
                                            for v in (self.mean, self.std))
        return self._constants[device]

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, C, H, W] in [0, 1] -> x = (pixels - mean) / std (float32)."""
        mean, std = self.constants(pixels.device)
        return (pixels.float() - mean) / std

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """x -> pixels x * std + mean, clamped to [0, 1]."""
        mean, std = self.constants(x.device)
        return (x * std + mean).clamp_(0.0, 1.0)

    def bounds(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel bounds [C] of x that pixels 0 and 1 map to: (-mean / std, (1 - mean) / std)."""
        mean, std = (v.reshape(-1) for v in self.constants(device))
        return -mean / std, (1.0 - mean) / std

    def quantised(self, x: torch.Tensor) -> torch.Tensor:
        """x rounded to the 8-bit grid in pixel space (pixels clamped to [0, 1], rounded to k / 255)."""
        mean, std = self.constants(x.device)
        pixels = (x * std + mean).clamp(0.0, 1.0)
        return (torch.round(pixels * 255.0) / 255.0 - mean) / std

    def to_json(self) -> dict:
        """{"mean": [...], "std": [...]} rounded to RECORD_DIGITS decimals, as a run record keeps them."""
        return {"mean": [round(v, RECORD_DIGITS) for v in self.mean],
                "std": [round(v, RECORD_DIGITS) for v in self.std]}
