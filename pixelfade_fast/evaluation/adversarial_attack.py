"""The identity-aware GAN attacker: a recovery generator trained against a PatchGAN discriminator, with a
reconstruction loss to the original and an identity loss through a Re-ID model the attacker holds.

This is the shape of the attacks that beat plain L1 U-Nets on AVIH and on perceptual encryption: the adversarial
loss asks for realistic detail where a pixel loss alone averages, the identity loss asks the recovery to carry the
original's identity as a Re-ID model sees it (1 − cosine of the features of G(x^p) and of x; the model is frozen
and the gradient flows through it into the generator). The generator and its reconstruction training are the
recovery U-Net's (``attack.train_recovery`` with the size's ``AttackSettings``: residual U-Net, L1 + (1 − SSIM),
one-cycle AdamW, random crops and flips); pix2pix's conditional PatchGAN (BCE logits) sees (protected, original)
against (protected, G(protected)) and trains at every step, as in pix2pix (its update first, on the detached
recovery). The generator's loss is reconstruction + ramp · (λ_adv · BCE(D(x^p, G(x^p)), real) + λ_id · identity),
where ramp is 0 for the first ``warmup`` of the steps (reconstruction alone: a discriminator facing an untrained
generator, and an identity gradient through a model trained on other images, only pull it away from the
original) and 1 after. pix2pix's own weights (GAN 1, L1 100) cost the attacker PSNR and SSIM at the sizes a CPU
trains (docs/results/attack_strength.md), so the terms are weighted to add to what reconstruction reaches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import frozen
from ..feature_model import features_of
from ..input_space import InputSpace
from .attack import ProtectFn, train_recovery
from .attacker_sizes import AdversarialSize
from .pix2pix import PatchDiscriminator
from .unet import RecoveryUNet


def identity_loss(model: nn.Module, recovered: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cosine(f(recovered), target features) through ``model`` (pixels in [0, 1]; the gradient
    reaches ``recovered``)."""
    space = InputSpace.of(model, recovered.shape[1])
    features = features_of(model(space.normalise(recovered))).float()
    return (1.0 - F.cosine_similarity(features, target_features, dim=1)).mean()


class AdversarialTerms:
    """The GAN and identity terms as ``train_recovery``'s auxiliary loss; owns the discriminator and its
    optimiser (Adam, pix2pix's betas, the generator's peak learning rate)."""

    def __init__(self, model: nn.Module, size: AdversarialSize, device: torch.device) -> None:
        self.model = model
        self.size = size
        self.space = InputSpace.of(model, 3)
        self.discriminator = PatchDiscriminator(filters=size.discriminator_filters,
                                                layers=size.discriminator_layers).to(device).train()
        self.optimiser = torch.optim.Adam(self.discriminator.parameters(), lr=size.generator.lr, betas=(0.5, 0.999))

    def train_discriminator(self, inputs: torch.Tensor, recovered: torch.Tensor, target: torch.Tensor) -> None:
        real = self.discriminator(inputs, target)
        fake = self.discriminator(inputs, recovered.detach())
        loss = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                      + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()

    def terms(self, inputs: torch.Tensor, recovered: torch.Tensor, target: torch.Tensor) -> dict:
        """The generator's unweighted terms on one batch: {"gan", "identity"} (the model must be frozen)."""
        logits = self.discriminator(inputs, recovered)
        gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        with torch.no_grad():
            target_features = features_of(self.model(self.space.normalise(target))).float()
        return {"gan": gan, "identity": identity_loss(self.model, recovered, target_features)}

    def __call__(self, step: int, total: int, inputs: torch.Tensor, recovered: torch.Tensor,
                 target: torch.Tensor) -> torch.Tensor:
        self.train_discriminator(inputs, recovered, target)
        if step < self.size.warmup * total:
            return recovered.new_zeros(())
        terms = self.terms(inputs, recovered, target)
        return self.size.adversarial_weight * terms["gan"] + self.size.identity_weight * terms["identity"]


def train_adversarial(protected_train: torch.Tensor | None, original_train: torch.Tensor, model: nn.Module,
                      size: AdversarialSize, *, seed: int = 0, device=None,
                      protect_fn: ProtectFn | None = None) -> RecoveryUNet:
    """Train the generator (and its discriminator) on (protected -> original) pairs with the identity loss through
    ``model`` (frozen while it trains); returns the generator in eval mode."""
    device = torch.device(device) if device is not None else original_train.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 3)  # the discriminator's weights; the generator's come from train_recovery's seed
        terms = AdversarialTerms(model, size, device)
    with frozen(model):
        return train_recovery(protected_train, original_train, size.generator, seed=seed, device=device,
                              protect_fn=protect_fn, auxiliary=terms)
