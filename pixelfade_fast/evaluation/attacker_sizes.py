"""How big the attackers beyond the recovery U-Net are: one frozen record per attacker and the named sizes.

The authors' attack: ``full`` is their script (pix2pix ``unet_128``, 64 filters, 100 epochs, Adam lr 1e-3);
``cpu`` keeps its shape (7 down-samplings, BatchNorm) and shrinks filters (16) and epochs (12).

The adversarial attacker's generator and reconstruction training are our recovery U-Net's (an ``AttackSettings``),
with pix2pix's PatchGAN and the identity term added after a reconstruction warm-up, weighted small. At the sizes a
CPU trains, pix2pix's own recipe (its generator; GAN 1 : L1 100 : identity 10 from the first step; lr 1e-3)
recovered blur on CUHK01 2.1 dB below the same generator with L1 alone; on our U-Net (8-epoch trials) the GAN term
at pix2pix's weight from the first step cost 0.7 dB, the identity term at 0.1 cost 0.07 dB and 0.014 SSIM, and
GAN 0.002 with identity 0.03 after half the steps cost nothing (docs/results/attack_strength.md). ``cpu`` is the
``strong`` preset (residual U-Net, L1 + (1 − SSIM), one-cycle AdamW, 24 epochs on random 128x64 crops with flips)
in batches of 8 (twice the steps of ``strong``'s 16 for about 1.2x the time; on blur from 400 images +0.2 dB for
reconstruction alone, +0.08 dB with the two terms) against a 16-filter 3-layer PatchGAN: about 10 minutes of one
CPU thread for 400 training images at 128x64.
``full`` is the same design scaled up for a GPU (U-Net width 64, 100 epochs on whole images in batches of 16,
pix2pix's 64-filter PatchGAN), not pix2pix's published settings: an attacker is worth running for being the
strongest we can build, and pix2pix's published GAN scores below reconstruction alone on PSNR and SSIM, the
figures we report.

The decoder is ours: ``full`` width 64, 100 epochs; ``cpu`` width 16, 40 epochs. ``tiny`` is for tests (seconds on
32x16 images). Times in docs/results/attack_strength.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from .attack_settings import ATTACK_PRESETS, AttackSettings, attack_preset


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
    """The identity-aware GAN attacker: the generator and its reconstruction training (a recovery U-Net
    AttackSettings), the PatchGAN discriminator and the weights of its terms."""

    generator: AttackSettings = ATTACK_PRESETS["strong"]
    discriminator_filters: int = 64  # ndf of the PatchGAN
    discriminator_layers: int = 3  # pix2pix's "basic" (70x70 patches); fewer for tiny images
    adversarial_weight: float = 0.002  # on BCE(D(x^p, G(x^p)), real); the reconstruction loss weighs 1
    identity_weight: float = 0.03  # on 1 − cosine(f(G(x^p)), f(x))
    warmup: float = 0.5  # the first fraction of the steps trains on reconstruction alone


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
                         AdversarialSize(attack_preset("tiny", width=8, epochs=6), discriminator_filters=8,
                                         discriminator_layers=1),
                         DecoderSize(width=8, upsamplings=3, epochs=20, batch_size=16, lr=3e-3)),
    "cpu": AttackerSize(GeneratorSize(filters=16, epochs=12, batch_size=16),
                        AdversarialSize(attack_preset("strong", batch_size=8), discriminator_filters=16),
                        DecoderSize(width=16, epochs=40, batch_size=32)),
    "full": AttackerSize(GeneratorSize(), AdversarialSize(attack_preset("strong", width=64, epochs=100, crop=None)),
                         DecoderSize()),
}
ATTACKER_SIZES = tuple(ATTACKER_SIZE_PRESETS)
