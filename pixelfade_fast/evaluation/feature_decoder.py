"""What the features alone leak: a decoder from Re-ID features to images.

Anyone who holds a Re-ID model can extract its features from public pedestrian images and learn to map them back
to the images. Applied to f(x^p) it is an attacker of any method; applied to the clean images' own features f(x)
it recovers what every method that keeps utility (f(x^p) ≈ f(x)) must leak: the report's second floor, "what
utility alone leaks". The decoder needs no protected image, so it is learned once per model and run.

Network: the features, standardised by the training set's mean and std, go through a linear layer to a
(coarse) grid of channels, then ``upsamplings`` blocks of nearest 2x upsampling, 3x3 convolution, GroupNorm and
ReLU, and a 3x3 convolution with a sigmoid to pixels; the output is cropped to the image size. Loss L1 + (1 − SSIM)
(as the strong U-Net preset), Adam.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import extract_features
from .attack import shuffled_batches
from .attacker_sizes import DecoderSize
from .privacy import SSIM_WINDOW, ssim

MAX_CHANNELS = 256


class FeatureDecoder(nn.Module):
    """Features [N, D] -> pixels [N, 3, H, W] in (0, 1)."""

    def __init__(self, feature_dim: int, image_size: tuple[int, int], width: int = 64, upsamplings: int = 5,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        scale = 2 ** upsamplings
        self.grid = (math.ceil(image_size[0] / scale), math.ceil(image_size[1] / scale))
        channels = [min(width * 2 ** (upsamplings - level), MAX_CHANNELS) for level in range(upsamplings + 1)]
        self.register_buffer("mean", torch.zeros(feature_dim) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(feature_dim) if std is None else std.float().clone())
        self.linear = nn.Linear(feature_dim, channels[0] * self.grid[0] * self.grid[1])
        blocks = []
        for level in range(upsamplings):
            out = channels[level + 1]
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels[level], out, 3, padding=1),
                       nn.GroupNorm(math.gcd(8, out), out), nn.ReLU()]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(channels[-1], 3, 3, padding=1)
        self.channels = channels[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features.float() - self.mean) / self.std
        x = self.linear(z).reshape(-1, self.channels, *self.grid)
        x = torch.sigmoid(self.head(self.blocks(F.relu(x))))
        return x[:, :, :self.image_size[0], :self.image_size[1]]


def train_decoder(model: nn.Module, original_train: torch.Tensor, size: DecoderSize, *, seed: int = 0,
                  device=None) -> FeatureDecoder:
    """A FeatureDecoder learned on ``model``'s features of the attacker's public images ``original_train``."""
    device = torch.device(device) if device is not None else original_train.device
    features = extract_features(model, original_train).to(device)
    std = features.std(dim=0).clamp_min(1e-6) if features.shape[0] > 1 else torch.ones_like(features[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = FeatureDecoder(features.shape[1], tuple(original_train.shape[2:]), size.width, size.upsamplings,
                                 mean=features.mean(dim=0), std=std)
    decoder = decoder.to(device).train()
    optimiser = torch.optim.Adam(decoder.parameters(), lr=size.lr)
    use_ssim = min(original_train.shape[2:]) >= SSIM_WINDOW
    for index in shuffled_batches(original_train.shape[0], size.batch_size, size.epochs, seed):
        target = original_train[index].to(device, torch.float32)
        recovered = decoder(features[index.to(device)])
        loss = F.l1_loss(recovered, target)
        if use_ssim:
            loss = loss + (1.0 - ssim(recovered, target).mean())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return decoder.eval()


@torch.no_grad()
def decode(decoder: FeatureDecoder, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The decoder's recoveries from ``model``'s features of ``images`` (protected or clean), on the CPU."""
    device = next(decoder.parameters()).device
    return decoder(extract_features(model, images).to(device)).cpu()
