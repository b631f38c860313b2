"""Small models for engine tests: fast on CPU, with features on the scale of a real Re-ID model's."""
import torch
from torch import nn


class SmallReIDNet(nn.Module):
    """A few conv layers and a linear head whose features have per-dimension spread ~1 on natural-ish images,
    so that ε = 0.03 is a real constraint (a noise image sits far above it), as with a trained OSNet."""

    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, feature_dim: int = 64, seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 2)), nn.Flatten(), nn.Linear(32 * 8, feature_dim),
        )
        torch.random.set_rng_state(generator_state)
        self.register_buffer("scale", torch.tensor(60.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.scale


def smooth_images(count: int, height: int = 64, width: int = 32, seed: int = 0) -> torch.Tensor:
    """Blurry random images in [0, 1]: a stand-in for pedestrian crops with spatial structure."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, height // 8, width // 8, generator=generator)
    fine = torch.rand(count, 3, height, width, generator=generator) * 0.2
    up = nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return (0.8 * up + fine).clamp(0, 1)
