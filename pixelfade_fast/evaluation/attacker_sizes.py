"""How big the attackers beyond the recovery U-Net are: one frozen record per attacker and the named sizes.

``full`` is a GPU's work: the authors' attack as their script runs it (64 filters, 100 epochs, Adam lr 1e-3) and
pix2pix's published GAN (64 filters, lr 2e-4, λ_L1 100); the identity weight and the decoder are ours, at the same
scale. ``cpu`` keeps the shapes that define each attacker (pix2pix's 7 down-samplings, BatchNorm, the 3-layer
PatchGAN) and shrinks filters (16) and epochs (12; the decoder 40) so that a report's attackers finish on a 2-core
CPU (times in docs/results/attack_strength.md); ``tiny`` is for tests (seconds on 32x16 images).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorSize:
    """A pix2pix U-Net generator (pix2pix.UnetGenerator) and how it is trained."""

    downsamplings: int = 7  # pix2pix "unet_128"
    filters: int = 64  # ngf
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-3


@dataclass(frozen=True)
class AdversarialSize:
    """The identity-aware GAN attacker: generator, PatchGAN discriminator and the loss weights."""

    generator: GeneratorSize = GeneratorSize(lr=2e-4)
    discriminator_filters: int = 64  # ndf of the PatchGAN
    discriminator_layers: int = 3  # pix2pix's "basic" (70x70 patches); fewer for tiny images
    l1_weight: float = 100.0  # pix2pix's λ
    identity_weight: float = 10.0  # on 1 − cosine(f(G(x^p)), f(x))


@dataclass(frozen=True)
class DecoderSize:
    """The feature decoder: features -> image."""

    width: int = 64  # channels at the decoder's finest level (doubled per coarser level)
    upsamplings: int = 5
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3


@dataclass(frozen=True)
class AttackerSize:
    authors: GeneratorSize
    adversarial: AdversarialSize
    decoder: DecoderSize


ATTACKER_SIZE_PRESETS: dict[str, AttackerSize] = {
    "tiny": AttackerSize(GeneratorSize(downsamplings=4, filters=8, epochs=10, batch_size=8),
                         AdversarialSize(GeneratorSize(downsamplings=4, filters=8, epochs=5, batch_size=8, lr=1e-3),
                                         discriminator_filters=8, discriminator_layers=1),
                         DecoderSize(width=8, upsamplings=3, epochs=20, batch_size=16, lr=3e-3)),
    "cpu": AttackerSize(GeneratorSize(filters=16, epochs=12, batch_size=16),
                        AdversarialSize(GeneratorSize(filters=16, epochs=12, batch_size=16, lr=1e-3),
                                        discriminator_filters=16),
                        DecoderSize(width=16, epochs=40, batch_size=32)),
    "full": AttackerSize(GeneratorSize(), AdversarialSize(), DecoderSize()),
}
ATTACKER_SIZES = tuple(ATTACKER_SIZE_PRESETS)
