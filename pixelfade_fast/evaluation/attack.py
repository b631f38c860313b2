"""The recovery attack of the threat model (paper Sec. 4.1.2) and its information-free floor.

The attacker holds the protection method as a black box, protects a public training split, and trains a U-Net
on (protected -> original) pairs with an L1 loss; it is scored by PSNR/SSIM of its recoveries of the
protected test split. The same attack trained and tested on inputs of fresh uniform noise learns only the
data set's prior (an average pedestrian): that floor is reached without any information from the protected
image, so a method's leakage is attack minus floor. The known-noise attacker also gets η (from the seed)
as three extra input channels, showing why the seed must stay secret.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..progress import ProgressArg, make_progress
from ..reference import derive_keys, fade_noise
from .privacy import psnr, ssim
from .unet import RecoveryUNet


def _check_images(name: str, images: torch.Tensor, channels: int | None = None) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise TypeError(f"{name} must be a float tensor [N, C, H, W], got "
                        f"{list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if channels is not None and images.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {list(images.shape)}")


def _check_pairs(inputs: torch.Tensor | None, targets: torch.Tensor, noise: torch.Tensor | None,
                 names: tuple[str, str, str]) -> None:
    _check_images(names[1], targets, 3)
    for name, tensor in ((names[0], inputs), (names[2], noise)):
        if tensor is None:
            continue
        _check_images(name, tensor, 3)
        if tensor.shape != targets.shape:
            raise ValueError(f"{name} {list(tensor.shape)} must match {names[1]} {list(targets.shape)}")


def _inputs(protected: torch.Tensor | None, noise: torch.Tensor | None, index: torch.Tensor, shape: tuple,
            device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """One batch of network inputs: the protected pixels (and η), or fresh uniform noise when protected is None."""
    if protected is None:
        return torch.rand(shape, generator=generator, device=device)
    parts = [protected[index].to(device, torch.float32)]
    if noise is not None:
        parts.append(noise[index].to(device, torch.float32))
    return torch.cat(parts, dim=1)


def attacker_noise(seed: int, uids: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """η of each image as the protection computed it (needs the secret seed): float32 [N, *shape] on the CPU."""
    return fade_noise(derive_keys(int(seed), list(uids)), tuple(shape))


def train_recovery(protected_train: torch.Tensor | None, original_train: torch.Tensor, *, epochs: int = 5,
                   batch_size: int = 16, lr: float = 2e-4, seed: int = 0, device: str | torch.device | None = None,
                   progress: ProgressArg = False, noise_train: torch.Tensor | None = None, width: int = 32,
                   depth: int = 4) -> RecoveryUNet:
    """Train a RecoveryUNet to map protected pixels [N, 3, H, W] to the originals (L1 loss, Adam(lr, β=(0.5, 0.999))).

    protected_train: the attacker's inputs; None trains the information-free floor (fresh uniform noise
        inputs every batch). noise_train: η of each training image (the known-noise attacker, 6 input channels).
    seed fixes the initial weights, the shuffling and the floor's noise: on CPU a rerun gives the same weights.
    Tensors may live on the CPU while training runs on ``device`` (default: the originals' device).
    """
    _check_pairs(protected_train, original_train, noise_train, ("protected_train", "original_train", "noise_train"))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    device = torch.device(device) if device is not None else original_train.device
    in_channels = 6 if noise_train is not None else 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = RecoveryUNet(in_channels=in_channels, width=width, depth=depth)
    net = net.to(device).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    order_generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1) if protected_train is None else None
    count = original_train.shape[0]
    batches = (count + batch_size - 1) // batch_size
    report = make_progress(progress, epochs * batches, "attack")
    for epoch in range(epochs):
        order = torch.randperm(count, generator=order_generator)
        for batch in range(batches):
            index = order[batch * batch_size:(batch + 1) * batch_size]
            target = original_train[index].to(device, torch.float32)
            shape = (index.numel(), in_channels) + tuple(target.shape[2:])
            inputs = _inputs(protected_train, noise_train, index, shape, device, noise_generator)
            loss = F.l1_loss(net(inputs), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            report(epoch * batches + batch + 1, epochs * batches)
    return net.eval()


@torch.no_grad()
def evaluate_recovery(net: RecoveryUNet, protected_test: torch.Tensor | None, original_test: torch.Tensor, *,
                      noise_test: torch.Tensor | None = None, batch_size: int = 64, keep: int = 8,
                      seed: int = 0) -> dict:
    """Recover ``protected_test`` with ``net`` and score against ``original_test`` (pixels in [0, 1]).

    protected_test None scores the floor (fresh uniform noise inputs, seeded by ``seed``). Returns psnr and
    ssim (means over images), psnr_per_image / ssim_per_image (numpy arrays), count, and ``recovered``: the
    first ``keep`` recovered images (CPU) for figures.
    """
    _check_pairs(protected_test, original_test, noise_test, ("protected_test", "original_test", "noise_test"))
    device = next(net.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed + 2) if protected_test is None else None
    was_training = net.training
    net.eval()
    psnrs, ssims, kept = [], [], []
    count = original_test.shape[0]
    for first in range(0, count, batch_size):
        index = torch.arange(first, min(first + batch_size, count))
        target = original_test[index].to(device, torch.float32)
        shape = (index.numel(), net.in_channels) + tuple(target.shape[2:])
        recovered = net(_inputs(protected_test, noise_test, index, shape, device, generator))
        psnrs.append(psnr(recovered, target))
        ssims.append(ssim(recovered, target))
        if first < keep:
            kept.append(recovered[:keep - first].cpu())
    net.train(was_training)
    psnr_all = torch.cat(psnrs).double().cpu().numpy()
    ssim_all = torch.cat(ssims).double().cpu().numpy()
    return {"psnr": float(psnr_all.mean()), "ssim": float(ssim_all.mean()), "psnr_per_image": psnr_all,
            "ssim_per_image": ssim_all, "count": count,
            "recovered": torch.cat(kept) if kept else original_test[:0].cpu()}


def prior_floor(original_train: torch.Tensor, original_test: torch.Tensor, *, epochs: int = 5, batch_size: int = 16,
                lr: float = 2e-4, seed: int = 0, device: str | torch.device | None = None,
                progress: ProgressArg = False, width: int = 32, depth: int = 4) -> dict:
    """The same attack, trained and tested with fresh uniform noise as input: what the data prior alone gives.

    It is the floor of both attackers (with or without η): extra channels of noise would carry nothing either.
    Returns the ``evaluate_recovery`` dict.
    """
    net = train_recovery(None, original_train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                         progress=progress, width=width, depth=depth)
    return evaluate_recovery(net, None, original_test, batch_size=max(batch_size, 64), seed=seed)


def run_attack(protected_train: torch.Tensor, original_train: torch.Tensor, protected_test: torch.Tensor,
               original_test: torch.Tensor, *, epochs: int = 5, batch_size: int = 16, lr: float = 2e-4, seed: int = 0,
               device: str | torch.device | None = None, progress: ProgressArg = False,
               noise_train: torch.Tensor | None = None, noise_test: torch.Tensor | None = None,
               floor: dict | None = None, width: int = 32, depth: int = 4) -> dict:
    """Attack one protection method and put it against the floor.

    noise_train / noise_test: η of each image for the known-noise attacker (both or neither).
    floor: a ``prior_floor`` result to reuse across methods (it depends only on the originals); computed
    here with the same settings when None.
    Returns the ``evaluate_recovery`` keys of the attack, plus floor_psnr, floor_ssim, leakage_psnr and
    leakage_ssim (attack minus floor: about 0 means the protected images told the attacker nothing), and
    visual_psnr / visual_ssim (protected test images against their originals, no attack).
    """
    if (noise_train is None) != (noise_test is None):
        raise ValueError("give both noise_train and noise_test (known-noise attacker) or neither")
    _check_pairs(protected_test, original_test, noise_test, ("protected_test", "original_test", "noise_test"))
    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
                    width=width, depth=depth)
    net = train_recovery(protected_train, original_train, noise_train=noise_train, **settings)
    result = evaluate_recovery(net, protected_test, original_test, noise_test=noise_test,
                               batch_size=max(batch_size, 64), seed=seed)
    if floor is None:
        floor = prior_floor(original_train, original_test, **settings)
    pairs = list(zip(protected_test.split(64), original_test.split(64)))
    visual_psnr = torch.cat([psnr(protected, original) for protected, original in pairs])
    visual_ssim = torch.cat([ssim(protected, original) for protected, original in pairs])
    result.update(floor_psnr=floor["psnr"], floor_ssim=floor["ssim"], leakage_psnr=result["psnr"] - floor["psnr"],
                  leakage_ssim=result["ssim"] - floor["ssim"], visual_psnr=float(visual_psnr.mean()),
                  visual_ssim=float(visual_ssim.mean()), known_noise=noise_train is not None)
    return result
