"""The identity-aware GAN attacker: a pix2pix generator trained against a PatchGAN discriminator, with L1 to the
original and an identity loss through a Re-ID model the attacker holds.

This is the shape of the attacks that beat plain L1 U-Nets on AVIH and on perceptual encryption: the adversarial
loss asks for realistic detail where L1 alone averages, the identity loss asks the recovery to carry the
original's identity as a Re-ID model sees it (1 − cosine of the features of G(x^p) and of x; the model is frozen
and the gradient flows through it into the generator). pix2pix's conditional GAN with BCE logits: the
discriminator sees (protected, original) against (protected, G(protected)); the generator's loss is
BCE(D(x^p, G(x^p)), real) + λ_L1 · L1 + λ_id · identity.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import frozen
from ..feature_model import features_of
from ..input_space import InputSpace
from .attack import ProtectFn, shuffled_batches
from .attacker_sizes import AdversarialSize
from .authors_attack import training_inputs
from .pix2pix import PatchDiscriminator, UnetGenerator


def identity_loss(model: nn.Module, recovered: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cosine(f(recovered), target features) through ``model`` (pixels in [0, 1]; the gradient
    reaches ``recovered``)."""
    space = InputSpace.of(model, recovered.shape[1])
    features = features_of(model(space.normalise(recovered))).float()
    return (1.0 - F.cosine_similarity(features, target_features, dim=1)).mean()


def generator_losses(generator: nn.Module, discriminator: nn.Module, model: nn.Module, inputs: torch.Tensor,
                     target: torch.Tensor, target_features: torch.Tensor, size: AdversarialSize) -> dict:
    """The generator's loss terms on one batch: {"gan", "l1", "identity", "total", "fake"}."""
    fake = generator(inputs)
    logits = discriminator(inputs, fake)
    gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    l1 = F.l1_loss(fake, target)
    identity = identity_loss(model, fake, target_features)
    total = gan + size.l1_weight * l1 + size.identity_weight * identity
    return {"gan": gan, "l1": l1, "identity": identity, "total": total, "fake": fake}


def train_adversarial(protected_train: torch.Tensor | None, original_train: torch.Tensor, model: nn.Module,
                      size: AdversarialSize, *, seed: int = 0, device=None,
                      protect_fn: ProtectFn | None = None) -> UnetGenerator:
    """Train the generator (and its discriminator) on (protected -> original) pairs with the identity loss through
    ``model`` (frozen while it trains); returns the generator in eval mode."""
    if (protected_train is None) == (protect_fn is None):
        raise ValueError("give protected_train (stored pairs) or protect_fn (a pixel filter), exactly one")
    device = torch.device(device) if device is not None else original_train.device
    shape = size.generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = UnetGenerator(downsamplings=shape.downsamplings, filters=shape.filters).to(device).train()
        discriminator = PatchDiscriminator(filters=size.discriminator_filters,
                                           layers=size.discriminator_layers).to(device).train()
    betas = (0.5, 0.999)  # pix2pix's
    optimise_g = torch.optim.Adam(generator.parameters(), lr=shape.lr, betas=betas)
    optimise_d = torch.optim.Adam(discriminator.parameters(), lr=shape.lr, betas=betas)
    space = InputSpace.of(model, 3)
    with frozen(model):
        # BatchNorm needs two samples: a last one-image batch is left out
        for index in shuffled_batches(original_train.shape[0], shape.batch_size, shape.epochs, seed, min_size=2):
            target = original_train[index].to(device, torch.float32)
            inputs = training_inputs(protected_train, protect_fn, index, target)
            with torch.no_grad():
                target_features = features_of(model(space.normalise(target))).float()
            losses = generator_losses(generator, discriminator, model, inputs, target, target_features, size)
            optimise_g.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimise_g.step()
            real = discriminator(inputs, target)
            fake = discriminator(inputs, losses["fake"].detach())
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            optimise_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optimise_d.step()
    return generator.eval()
