"""The recovery attack of the threat model (paper Sec. 4.1.2) and its information-free floor.

The attacker holds the protection method as a black box, protects a public training split, and trains a U-Net
on (protected -> original) pairs; it is scored by PSNR/SSIM of its recoveries of the protected test split. How
big the attack is (network, epochs, pairs, augmentation, optimiser, schedule, loss) is one ``AttackSettings``.
The same attack trained and tested on inputs of fresh uniform noise learns only the data set's prior (an average
pedestrian): that floor is reached without any information from the protected image. Every figure is the best of
several attackers (``leakage.best_of``): the trained U-Net, the protected image taken as its own recovery, and
the mean of the attacker's training originals; the floor is the best of the information-free ones (noise U-Net,
mean image). A method's leakage is its best attack minus the floor. The known-noise attacker also gets η (from
the seed) as three extra input channels, showing why the seed must stay secret.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..progress import ProgressArg, make_progress
from ..reference import derive_keys, fade_noise
from ..reference.rng import DEFAULT_CONTRACT
from .attack_settings import AttackSettings
from .augment import apply_crops, apply_geometry, colour_jitter, crop_size, draw_crops, draw_geometry
from .leakage import best_of
from .privacy import psnr, ssim
from .unet import RecoveryUNet

EVAL_BATCH = 64
ProtectFn = Callable[[torch.Tensor], torch.Tensor]
# A loss added to the reconstruction loss at each training step: (step, total steps, inputs, recovered, target)
# -> a scalar tensor (the adversarial attacker's GAN and identity terms; it may train its own networks meanwhile).
AuxiliaryLoss = Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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


def _check_settings(settings: AttackSettings) -> None:
    if not isinstance(settings, AttackSettings):
        raise TypeError(f"settings must be an AttackSettings (attack_settings.attack_preset('tiny' | 'demo' | "
                        f"'strong')), got {type(settings).__name__}")


def attacker_noise(seed: int, uids: Sequence[int], shape: Sequence[int],
                   rng_contract: int = DEFAULT_CONTRACT) -> torch.Tensor:
    """η of each image as the protection computed it (needs the secret seed): float32 [N, *shape] on the CPU.

    ``rng_contract`` must be the one ``protect`` used (its default is the same)."""
    return fade_noise(derive_keys(int(seed), list(uids), rng_contract), tuple(shape))


def _optimiser(net: torch.nn.Module, settings: AttackSettings, total_steps: int):
    if settings.optimiser == "adam":
        optimiser = torch.optim.Adam(net.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    else:
        optimiser = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    if settings.schedule == "onecycle":
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.lr, total_steps=total_steps,
                                                       pct_start=settings.warmup)
    elif settings.schedule == "cosine":
        warmup = max(1, round(settings.warmup * total_steps))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    else:
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
    return optimiser, schedule


def _loss(recovered: torch.Tensor, target: torch.Tensor, settings: AttackSettings) -> torch.Tensor:
    loss = F.l1_loss(recovered, target)
    if settings.ssim_weight > 0:
        loss = loss + settings.ssim_weight * (1.0 - ssim(recovered, target).mean())
    return loss


def shuffled_batches(count: int, batch_size: int, epochs: int, seed: int, min_size: int = 1) -> Iterator[torch.Tensor]:
    """The index tensors of ``epochs`` passes over ``count`` training pairs, each pass in a new order drawn from
    ``seed``, ``batch_size`` at a time; a batch smaller than ``min_size`` is left out (BatchNorm needs two)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        for first in range(0, count, batch_size):
            index = order[first:first + batch_size]
            if index.numel() >= min_size:
                yield index


def train_recovery(protected_train: torch.Tensor | None, original_train: torch.Tensor, settings: AttackSettings, *,
                   seed: int = 0, device: str | torch.device | None = None, progress: ProgressArg = False,
                   noise_train: torch.Tensor | None = None, protect_fn: ProtectFn | None = None,
                   auxiliary: AuxiliaryLoss | None = None) -> RecoveryUNet:
    """Train a RecoveryUNet to map protected pixels [N, 3, H, W] to the originals, sized by ``settings``.

    The attacker's inputs, one of:
    - protected_train: stored protected images; flips and shifts are applied to input and original alike.
    - protect_fn: the black box itself (a cheap pixel filter): every batch of augmented originals (flips,
      shifts, colour jitter) is protected afresh, so each augmentation gives an exact pair.
    - neither: the information-free floor (fresh uniform noise inputs every batch; originals flipped/shifted).
    noise_train: η of each training image (the known-noise attacker, 6 input channels; needs protected_train).
    auxiliary: a loss added to the reconstruction loss at every step (``AuxiliaryLoss``), on the same augmented
    batch the U-Net trains on.
    seed fixes the initial weights, the order, the augmentations and the floor's noise: on CPU a rerun gives
    the same weights. Tensors may live on the CPU while training runs on ``device`` (default: the originals').
    """
    _check_settings(settings)
    _check_pairs(protected_train, original_train, noise_train, ("protected_train", "original_train", "noise_train"))
    if protect_fn is not None and (protected_train is not None or noise_train is not None):
        raise ValueError("give protect_fn (pairs made on the fly) or protected_train / noise_train, not both")
    if noise_train is not None and protected_train is None:
        raise ValueError("noise_train needs protected_train (the known-noise attacker sees both)")
    device = torch.device(device) if device is not None else original_train.device
    in_channels = 6 if noise_train is not None else 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = RecoveryUNet(in_channels=in_channels, width=settings.width, depth=settings.depth,
                           input_skip=settings.input_skip, blocks=settings.blocks)
    # channels-last: oneDNN's faster convolution layout on CPU (about 1.8x for the transposed ones)
    net = net.to(device, memory_format=torch.channels_last).train()
    count = original_train.shape[0]
    batches = (count + settings.batch_size - 1) // settings.batch_size
    total = settings.epochs * batches
    optimiser, schedule = _optimiser(net, settings, total)
    generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
    crop = crop_size(tuple(original_train.shape[2:]), settings.crop)
    report = make_progress(progress, total, "attack", unit="step")
    for epoch in range(settings.epochs):
        order = torch.randperm(count, generator=generator)
        for batch in range(batches):
            index = order[batch * settings.batch_size:(batch + 1) * settings.batch_size]
            geometry = draw_geometry(index.numel(), settings.flip, settings.shift, generator)
            corners = draw_crops(index.numel(), tuple(original_train.shape[2:]), crop, generator)
            target = apply_geometry(original_train[index].to(device, torch.float32), geometry)
            if protect_fn is not None:
                target = colour_jitter(target, settings.colour_jitter, generator)
                with torch.no_grad():
                    inputs = protect_fn(target).clamp(0.0, 1.0).float()
            elif protected_train is None:
                inputs = None
            else:
                parts = [protected_train[index]] + ([noise_train[index]] if noise_train is not None else [])
                inputs = apply_geometry(torch.cat([p.to(device, torch.float32) for p in parts], dim=1), geometry)
            target = apply_crops(target, corners, crop)
            if inputs is None:  # the floor: fresh noise of the (cropped) target's size
                inputs = torch.rand(target.shape, generator=noise_generator, device=device)
            else:
                inputs = apply_crops(inputs, corners, crop)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            recovered = net(inputs)
            loss = _loss(recovered, target, settings)
            if auxiliary is not None:
                loss = loss + auxiliary(epoch * batches + batch, total, inputs, recovered, target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            report(epoch * batches + batch + 1, total)
    return net.eval()


def _scores(recovered: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return psnr(recovered, target), ssim(recovered, target)


def _summary(psnrs: list[torch.Tensor], ssims: list[torch.Tensor]) -> dict:
    psnr_all = torch.cat(psnrs).double().cpu().numpy()
    ssim_all = torch.cat(ssims).double().cpu().numpy()
    return {"psnr": float(psnr_all.mean()), "ssim": float(ssim_all.mean()), "psnr_per_image": psnr_all,
            "ssim_per_image": ssim_all, "count": int(psnr_all.size)}


@torch.no_grad()
def evaluate_recovery(net: RecoveryUNet, protected_test: torch.Tensor | None, original_test: torch.Tensor, *,
                      noise_test: torch.Tensor | None = None, batch_size: int = EVAL_BATCH, keep: int = 8,
                      seed: int = 0) -> dict:
    """Recover ``protected_test`` with ``net`` and score against ``original_test`` (pixels in [0, 1]).

    protected_test None scores the floor (fresh uniform noise inputs, seeded by ``seed``). Returns psnr and
    ssim (means over images), psnr_per_image / ssim_per_image (numpy arrays), count, and ``recovered``: the
    first ``keep`` recovered images (CPU) for figures.
    """
    _check_pairs(protected_test, original_test, noise_test, ("protected_test", "original_test", "noise_test"))
    device = next(net.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed + 2)
    was_training = net.training
    net.eval()
    psnrs, ssims, kept = [], [], []
    count = original_test.shape[0]
    for first in range(0, count, batch_size):
        index = torch.arange(first, min(first + batch_size, count))
        target = original_test[index].to(device, torch.float32)
        if protected_test is None:
            inputs = torch.rand((index.numel(), net.in_channels) + tuple(target.shape[2:]), generator=generator,
                                device=device)
        else:
            parts = [protected_test[index]] + ([noise_test[index]] if noise_test is not None else [])
            inputs = torch.cat([p.to(device, torch.float32) for p in parts], dim=1)
        recovered = net(inputs.contiguous(memory_format=torch.channels_last))
        scores = _scores(recovered, target)
        psnrs.append(scores[0])
        ssims.append(scores[1])
        if first < keep:
            kept.append(recovered[:keep - first].cpu())
    net.train(was_training)
    result = _summary(psnrs, ssims)
    result["recovered"] = torch.cat(kept) if kept else original_test[:0].cpu()
    return result


@torch.no_grad()
def score_images(candidates: torch.Tensor, original_test: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict:
    """PSNR/SSIM of fixed images taken as recoveries: [N, 3, H, W] (e.g. the protected images themselves) or
    one image [1, 3, H, W] for all (the mean image). Same keys as ``evaluate_recovery`` without ``recovered``."""
    _check_images("original_test", original_test, 3)
    _check_images("candidates", candidates, 3)
    if candidates.shape[0] not in (1, original_test.shape[0]) or candidates.shape[1:] != original_test.shape[1:]:
        raise ValueError(f"candidates {list(candidates.shape)} must be one image or one per original "
                         f"{list(original_test.shape)}")
    psnrs, ssims = [], []
    for first in range(0, original_test.shape[0], batch_size):
        target = original_test[first:first + batch_size].float()
        guess = candidates if candidates.shape[0] == 1 else candidates[first:first + batch_size]
        scores = _scores(guess.to(target.device, torch.float32).expand_as(target), target)
        psnrs.append(scores[0])
        ssims.append(scores[1])
    return _summary(psnrs, ssims)


def prior_floor(original_train: torch.Tensor, original_test: torch.Tensor, settings: AttackSettings, *,
                seed: int = 0, device: str | torch.device | None = None, progress: ProgressArg = False) -> dict:
    """What an attacker without any information from the protected image reaches: the best of the attack
    trained and tested on fresh uniform noise ("unet") and the mean of the training originals ("mean").

    It is the floor of both attackers (with or without η): extra channels of noise would carry nothing either.
    Returns the ``best_of`` dict (psnr, ssim, psnr_attacker, ssim_attacker, attackers: name -> scores) plus
    ``recovered`` (the noise U-Net's first recoveries), ``mean_image`` [1, 3, H, W] and the noise U-Net's per-image
    scores (``unet_psnr_per_image``, ``unet_ssim_per_image``).
    """
    net = train_recovery(None, original_train, settings, seed=seed, device=device, progress=progress)
    unet = evaluate_recovery(net, None, original_test, seed=seed)
    mean_image = original_train.float().mean(dim=0, keepdim=True).to(unet["recovered"].device)
    mean = score_images(mean_image, original_test)
    floor = best_of({"unet": unet, "mean": mean})
    floor.update(recovered=unet["recovered"], mean_image=mean_image, unet_psnr_per_image=unet["psnr_per_image"],
                 unet_ssim_per_image=unet["ssim_per_image"])
    return floor


def run_attack(protected_train: torch.Tensor | None, original_train: torch.Tensor, protected_test: torch.Tensor,
               original_test: torch.Tensor, settings: AttackSettings, *, seed: int = 0,
               device: str | torch.device | None = None, progress: ProgressArg = False,
               noise_train: torch.Tensor | None = None, noise_test: torch.Tensor | None = None,
               floor: dict | None = None, protect_fn: ProtectFn | None = None) -> dict:
    """Attack one protection method with the best of three attackers and put it against the floor.

    protected_train or protect_fn: the attacker's training inputs (see ``train_recovery``).
    noise_train / noise_test: η of each image for the known-noise attacker (both or neither).
    floor: a ``prior_floor`` result to reuse across methods (it depends only on the originals); computed
    here with the same settings when None.
    Returns psnr / ssim: the best attacker's means, psnr_attacker / ssim_attacker: which one ("unet",
    "protected", "mean"), attackers: each one's psnr / ssim; unet_psnr / unet_ssim and the U-Net's per-image
    scores and ``recovered`` images; floor_psnr / floor_ssim; leakage_psnr / leakage_ssim (best attack minus
    floor: about 0 means the protected images told the attacker nothing) and unet_leakage_psnr / _ssim (the
    trained U-Net alone minus the floor); visual_psnr / visual_ssim (protected test images against their
    originals: the "protected" attacker).
    """
    _check_settings(settings)
    if (noise_train is None) != (noise_test is None):
        raise ValueError("give both noise_train and noise_test (known-noise attacker) or neither")
    _check_pairs(protected_test, original_test, noise_test, ("protected_test", "original_test", "noise_test"))
    if protected_train is None and protect_fn is None:
        raise ValueError("give protected_train or protect_fn: the attacker needs training pairs")
    net = train_recovery(protected_train, original_train, settings, seed=seed, device=device, progress=progress,
                         noise_train=noise_train, protect_fn=protect_fn)
    unet = evaluate_recovery(net, protected_test, original_test, noise_test=noise_test, seed=seed)
    if floor is None:
        floor = prior_floor(original_train, original_test, settings, seed=seed, device=device, progress=progress)
    visual = score_images(protected_test, original_test)
    result = best_of({"unet": unet, "protected": visual, "mean": floor["attackers"]["mean"]})
    result.update(unet_psnr=unet["psnr"], unet_ssim=unet["ssim"], psnr_per_image=unet["psnr_per_image"],
                  ssim_per_image=unet["ssim_per_image"], count=unet["count"], recovered=unet["recovered"],
                  floor_psnr=floor["psnr"], floor_ssim=floor["ssim"],
                  leakage_psnr=result["psnr"] - floor["psnr"], leakage_ssim=result["ssim"] - floor["ssim"],
                  unet_leakage_psnr=unet["psnr"] - floor["psnr"], unet_leakage_ssim=unet["ssim"] - floor["ssim"],
                  visual_psnr=visual["psnr"], visual_ssim=visual["ssim"], known_noise=noise_train is not None)
    return result
