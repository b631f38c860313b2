"""The PixelFade authors' recovery attack and their metric (their recovery_attack.py, described in issue 25).

The attack: pix2pix's ``unet_128`` generator (7 down-samplings, 64 filters, BatchNorm), L1 loss, Adam (lr 1e-3,
torch's default betas), trained on the protected/original pairs of the attacker's training split, scored in eval
mode (BatchNorm's running statistics). Their metric rescales each batch of images, and separately the batch of
originals, to [0, 1] by the batch's own minimum and maximum before PSNR and SSIM: an affine change of either
batch leaves it unchanged, so it is not comparable with PSNR/SSIM on the pixels themselves, and is reported beside
ours, never in the best-of.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .attack import EVAL_BATCH, ProtectFn, shuffled_batches
from .attacker_sizes import GeneratorSize
from .pix2pix import UnetGenerator
from .privacy import psnr, ssim


def minmax_rescaled(images: torch.Tensor) -> torch.Tensor:
    """``images`` mapped to [0, 1] by the batch's minimum and maximum (a constant batch maps to zeros)."""
    low, high = images.min(), images.max()
    return (images - low) / (high - low).clamp_min(torch.finfo(images.dtype).tiny)


def authors_metric(recovered: torch.Tensor, original: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict:
    """Mean PSNR and SSIM over images after min-max rescaling each batch of ``batch_size`` recoveries and the same
    batch of originals (the authors' metric): {"psnr", "ssim"}."""
    psnrs, ssims = [], []
    for first in range(0, original.shape[0], batch_size):
        a = minmax_rescaled(recovered[first:first + batch_size].double())
        b = minmax_rescaled(original[first:first + batch_size].double())
        psnrs.append(psnr(a, b))
        ssims.append(ssim(a, b))
    return {"psnr": float(torch.cat(psnrs).mean()), "ssim": float(torch.cat(ssims).mean())}


def training_inputs(protected_train: torch.Tensor | None, protect_fn: ProtectFn | None, index: torch.Tensor,
                    original: torch.Tensor) -> torch.Tensor:
    """The attacker's inputs for the training ``index``: the stored protected images, or the black box applied to
    the originals (pixel filters)."""
    if protected_train is not None:
        return protected_train[index].to(original.device, torch.float32)
    with torch.no_grad():
        return protect_fn(original).clamp(0.0, 1.0).float()


def train_generator(protected_train: torch.Tensor | None, original_train: torch.Tensor, size: GeneratorSize, *,
                    seed: int = 0, device=None, protect_fn: ProtectFn | None = None) -> UnetGenerator:
    """The authors' attack: a pix2pix U-Net trained with L1 on (protected -> original), Adam at ``size.lr``."""
    if (protected_train is None) == (protect_fn is None):
        raise ValueError("give protected_train (stored pairs) or protect_fn (a pixel filter), exactly one")
    device = torch.device(device) if device is not None else original_train.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UnetGenerator(downsamplings=size.downsamplings, filters=size.filters)
    net = net.to(device).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=size.lr)
    # BatchNorm needs two samples: a last one-image batch is left out
    for index in shuffled_batches(original_train.shape[0], size.batch_size, size.epochs, seed, min_size=2):
        target = original_train[index].to(device, torch.float32)
        loss = F.l1_loss(net(training_inputs(protected_train, protect_fn, index, target)), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return net.eval()


@torch.no_grad()
def recover(net: torch.nn.Module, protected_test: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The network's recoveries of ``protected_test``, in eval mode, on the CPU."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = [net(protected_test[first:first + batch_size].to(device, torch.float32)).cpu()
           for first in range(0, protected_test.shape[0], batch_size)]
    net.train(was_training)
    return torch.cat(out)
