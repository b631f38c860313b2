"""``protect(model, images, config)``: PixelFade over a set of images, batch by batch."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from ..config import FadeConfig
from ..progress import ProgressArg, make_progress
from ..reference.rng import DEFAULT_CONTRACT, derive_keys, random_seed
from .acceleration import Acceleration
from .checks import check_batch_size, check_images, check_uids
from .loop import Observer
from .protector import DEFAULT_BATCH, Protector
from .tuning import choose_speed


@dataclass
class ProtectResult:
    """Protected images in [0, 1] (same layout and device as the input), per-image final loss, ε and ε flag."""

    images: torch.Tensor
    final_loss: torch.Tensor
    met_epsilon: torch.Tensor
    backend: str
    config: FadeConfig
    timings: dict = field(default_factory=dict)
    epsilon: torch.Tensor | None = None  # each image's ε (config.epsilon, or relative to its features' scale)

    @property
    def met_rate(self) -> float:
        """Fraction of images whose final loss is below ε."""
        return float(self.met_epsilon.float().mean()) if self.met_epsilon.numel() else 0.0


def protect(model: nn.Module, images: torch.Tensor, config: FadeConfig | None = None, *,
            uids: Sequence[int] | torch.Tensor | None = None, seed: int | None = None, backend: str | None = "auto",
            batch_size: int | None = None, acceleration: Acceleration | None = None,
            observer: Observer | None = None, progress: ProgressArg = None,
            rng_contract: int = DEFAULT_CONTRACT, tune: bool | None = False) -> ProtectResult:
    """Protect ``images`` (float [N, 3, H, W] in [0, 1]) against recovery while ``model`` still matches them.

    model: any ``nn.Module`` returning [B, D] features (or a tuple / dict holding them). Its ``mean``/``std``
        attributes (per-channel, as a ReIDModel has) define the input space it expects, x = (pixel - mean) / std;
        without them pixels go in unchanged. Its ``input_size`` (H, W), when present, is checked. It is put in
        eval mode with frozen weights for the call, then restored.
    uids: stable per-image integers (default 0..N-1); with the seed they fix each image's noise and masks.
    seed: the run's secret, an integer in [0, 2^256) (default: 256 bits from os.urandom). Never stored in the
        result: whoever knows it knows η. A small seed makes a run reproducible (tests, reports); a secret that
        must stay secret is 256 random bits (docs/gallery.md, "The secret").
    backend: "auto", "reference", "triton" or "cpp" for the fused step (see pixelfade_fast.backends()).
    batch_size: images per batch (default 128 on CUDA, 16 on CPU). Each image's noise, masks and decisions are
        its own, but the model's kernels round differently at other batch sizes and the per-image ε decisions
        amplify that, so the bits depend on which images ran together: the same batches, backend, options and
        machine give the same bits.
    acceleration: model-side speed options (BatchNorm folding, channels_last, bf16, compile, CUDA graphs); see
        ``Acceleration`` for the defaults per device.
    observer: called after every step with a ``StepRecord`` (step, losses, flags; device tensors).
    progress: None (bar when stderr is a terminal), True, False, or a callable(done, total) in images.
    tune: measure the fastest batch size, memory layout and BatchNorm folding on this machine first, among the
        ones not given (``batch_size``, ``acceleration.channels_last``, ``acceleration.fold_batchnorm``; see
        ``engine.tuning``): True always, None only on the CPU for at least ``tuning.MIN_IMAGES`` images, False
        (default) never, so that a call's bits do not depend on a measurement. The choice and what it measured
        are in ``timings["tuning"]`` (cached per machine and model: ``tuning.cache_path()``).
    rng_contract: 2 (default) derives the keys with keyed BLAKE2b from a 256-bit seed; 1 reproduces runs made
        before contract 2 (a 64-bit seed, splitmix64 keys). See ``reference.derive_keys``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_images(images, model)
    check_batch_size(batch_size)
    count = images.shape[0]
    uid_list = check_uids(uids, count)
    device = images.device
    speed = choose_speed(model, tuple(images.shape[1:]), config or FadeConfig(), images=count, backend=backend,
                         acceleration=acceleration, batch_size=batch_size,
                         default_batch=DEFAULT_BATCH.get(device.type, 16), tune=tune)
    batch_size, acceleration = speed.batch_size, speed.acceleration
    seed = random_seed(rng_contract) if seed is None else int(seed)
    keys = derive_keys(seed, uid_list, rng_contract).to(device)
    report = make_progress(progress, count, "protect")
    start = time.perf_counter()
    with Protector(model, config, backend=backend, acceleration=acceleration, observer=observer) as protector:
        result = protector.protect_all(images, keys, batch_size, progress=report)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    config = protector.config
    timings = {"total_s": elapsed, "per_image_s": elapsed / count, "images_per_s": count / elapsed,
               "steps": config.total_steps, "batch_size": batch_size, **protector.notes,
               "acceleration": protector.options.to_dict(), "speed": speed.note,
               "tuning": None if speed.tuning is None else speed.tuning.to_dict()}
    return ProtectResult(result.pixels.to(images.dtype), result.final_loss, result.met_epsilon, protector.backend,
                         config, timings, result.epsilon)
