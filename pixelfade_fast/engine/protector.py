"""``Protector``: one model, config, backend and set of speed options, protecting batch after batch.

Everything that does not change between batches is done once here: the backend is resolved, the model is
prepared (BatchNorm folded, channels_last, compiled), and each batch shape gets one ``FadeLoop`` (and, on CUDA,
one captured graph) that every later batch of that shape reuses. ``protect_all`` is the one batch driver:
``protect()``, the ablations and the AVIH baseline run their image sets through it, so that they agree on the
batching, the input space, the targets, the clamp bounds and the mask ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .. import _backend, ops
from ..config import FadeConfig
from ..feature_model import model_device
from ..input_space import InputSpace
from ..storage_format import StorageFormat
from .acceleration import Acceleration, PreparedModel, prepare_model
from .checks import check_features
from .features import frozen, per_image_loss
from .graph import CapturedStep
from .jpeg_surrogate import surrogate_for
from .loop import FadeLoop, Observer, StepRecord
from .step import StepFn, fused_step

DEFAULT_BATCH = {"cuda": 128, "cpu": 16}
StepProgress = Callable[[int, int], None]  # (steps done, steps in all) of the batch in flight
ImageProgress = Callable[[float, int], None]  # (images done, fractions included; images in all)


@dataclass
class BatchSetup:
    """A batch ready for the loop: pixels and normalised images, fp32 targets f0, keys, bounds, mask ids."""

    pixels: torch.Tensor  # float32 [B, C, H, W] in [0, 1]
    x: torch.Tensor  # where the loop starts: (pixels - mean) / std, or the normalised start images
    target: torch.Tensor  # float32 [B, D]
    keys: torch.Tensor  # int64 [B, 4] (reference.derive_keys)
    lo: torch.Tensor  # float32 [C]
    hi: torch.Tensor  # float32 [C]
    mask_ids: torch.Tensor  # uint8 [B, C, H, W]
    epsilon: torch.Tensor  # float32 [B]: each image's ε (absolute, or relative to its features' scale)


# run_batch(rows of the image set, the batch set up) -> (protected pixels, final loss per image)
BatchRun = Callable[[slice, BatchSetup], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class BatchResult:
    """A protected batch: pixels in [0, 1], each image's final loss (fp32 model) and its ε."""

    pixels: torch.Tensor
    final_loss: torch.Tensor
    epsilon: torch.Tensor

    @property
    def met_epsilon(self) -> torch.Tensor:
        return self.final_loss < self.epsilon


class Protector:
    """Protects batches of pixel images with ``model``; use as a context manager (the model is frozen inside:
    eval mode, no weight gradients; its settings are restored on exit). ``space``: the input space of the images
    it is given (default: the model's, ``InputSpace.of(model)``); ``InputSpace.identity()`` for images already
    normalised for the model. ``stored_as``: the storage format whose stand-in every step measures the loss
    through (engine/jpeg_surrogate.py); ``codec``: another differentiable pixels -> decoded pixels map instead."""

    def __init__(self, model: nn.Module, config: FadeConfig | None = None, *, backend: str | None = "auto",
                 acceleration: Acceleration | None = None, observer: Observer | None = None,
                 space: InputSpace | None = None, stored_as: StorageFormat | None = None,
                 codec: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        config = config or FadeConfig()
        if not isinstance(config, FadeConfig):
            raise TypeError(f"config must be a FadeConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if acceleration is not None and not isinstance(acceleration, Acceleration):
            raise TypeError(f"acceleration must be an engine.Acceleration, got {type(acceleration).__name__}")
        self.model = model
        self.config = config
        self.device = model_device(model, torch.device("cpu"))
        self.backend = _backend.resolve(backend, self.device)
        self.options = (acceleration or Acceleration()).resolved(self.device)
        self.observer = observer
        # pixels -> the decoded stored pixels (differentiable): every step measures the loss through it (``codec``
        # given: that map, e.g. the stand-in corrected to the real codec's value; else ``stored_as``'s stand-in)
        self.codec = codec if codec is not None else surrogate_for(stored_as, self.device)
        self.space = space or InputSpace.of(model, 3)
        self._step = fused_step(self.backend, self.device)
        self._prepared: PreparedModel | None = None
        self._loops: dict[tuple, tuple[FadeLoop, CapturedStep | None]] = {}
        self.notes: dict = {"backend": self.backend}
        self._frozen = None

    def __enter__(self) -> Protector:
        self._frozen = frozen(self.model)
        self._frozen.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._frozen.__exit__(*exc)
        self._frozen = None

    # ------------------------------------------------------------------------------------------ batch set-up
    def prepared(self, x: torch.Tensor) -> PreparedModel:
        """The model with the speed options applied (done at the first batch, whose shape the probe takes)."""
        if self._frozen is None:
            raise RuntimeError("use the Protector as a context manager: `with Protector(model, config) as p:`")
        if self._prepared is None:
            probe = torch.randn((2,) + tuple(x.shape[1:]), generator=torch.Generator().manual_seed(0)).to(x.device)
            self._prepared = prepare_model(self.model, self.options, probe, feature_norm=self.config.feature_norm)
            self.notes.update(self._prepared.notes)
        return self._prepared

    def targets(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised images, fp32 target features f0) of a batch of pixels [B, 3, H, W] in [0, 1]."""
        x = self.space.normalise(pixels)
        with torch.no_grad():
            target = self.prepared(x).exact_features(x).float()
        check_features(target, x.shape[0])
        return x, target

    def setup(self, pixels: torch.Tensor, keys: torch.Tensor, start: torch.Tensor | None = None) -> BatchSetup:
        """Normalise a batch of pixels [B, 3, H, W] in [0, 1], compute its targets and step constants.
        start: pixels to start the loop from instead (targets, bounds and ε stay the originals')."""
        x, target = self.targets(pixels)
        channels = x.shape[1]
        if self.config.clamp == "pixel":
            lo, hi = self.space.bounds(self.device)
        else:  # the released code's batch-global bounds
            lo, hi = x.min().expand(channels).float(), x.max().expand(channels).float()
        keys = keys.to(self.device)
        mask_ids = ops.fade_mask_ids(keys, x.shape[1:], self.config.num_masks, self.config.pixel_masks,
                                     backend=self.backend)
        if start is not None:
            x = self.space.normalise(start)
        return BatchSetup(pixels.float(), x, target, keys, lo.contiguous(), hi.contiguous(), mask_ids,
                          self.config.epsilon_of(target))

    # ------------------------------------------------------------------------------------------ the loop
    def _new_loop(self, shape: tuple, step: StepFn) -> FadeLoop:
        return FadeLoop(self._prepared.loop_features, self.config, shape, self.device, step,
                        self.space if self.config.quantize else None,
                        None if self.codec is None else self._stored)

    def _stored(self, x: torch.Tensor) -> torch.Tensor:
        """x as the storage codec returns it (normalised images in and out)."""
        return self.space.normalise(self.codec(self.space.to_pixels(x)))

    def _cached_loop(self, shape: tuple, fill: Callable[[FadeLoop], None]) -> tuple[FadeLoop, CapturedStep | None]:
        """The loop (and captured step) for batches of ``shape``; ``fill`` loads a batch before a capture."""
        if shape not in self._loops:
            loop = self._new_loop(shape, self._step)
            captured = None
            if self.options.cuda_graph:
                fill(loop)
                try:
                    captured = CapturedStep(loop)
                    self.notes[f"cuda_graph {list(shape)}"] = "captured"
                except Exception as error:  # capture is an optimisation: fall back to eager and say why
                    self.notes[f"cuda_graph {list(shape)}"] = f"eager ({type(error).__name__}: {error})"
            else:
                self.notes["cuda_graph"] = "off"
            self._loops[shape] = (loop, captured)
        return self._loops[shape]

    @staticmethod
    def _load(loop: FadeLoop, setup: BatchSetup) -> None:
        loop.load(setup.x, setup.target, setup.keys, setup.lo, setup.hi, setup.mask_ids, setup.epsilon)

    def _compacted_loop(self, parent: FadeLoop, keep: torch.Tensor, step: int) -> tuple[FadeLoop, CapturedStep | None]:
        """A loop continuing rows ``keep`` of ``parent`` from ``step``. On CUDA its batch is the next power of two
        (padded by repeating the last row kept), so a few captured graphs serve every count; on the CPU it is
        the count itself and is not kept for later batches."""
        count = keep.numel()
        bucket = 1 << (count - 1).bit_length() if self.device.type == "cuda" else count
        padded = torch.cat([keep, keep[-1:].expand(bucket - count)])
        shape = (bucket,) + parent.shape[1:]
        if self.device.type == "cuda":
            loop, captured = self._cached_loop(shape, lambda fresh: fresh.adopt(parent, padded, step))
        else:
            loop, captured = self._new_loop(shape, self._step), None
        loop.adopt(parent, padded, step)
        return loop, captured

    def run(self, setup: BatchSetup, *, step: StepFn | None = None,
            progress: StepProgress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run every step on a set-up batch; returns (protected normalised images, per-image final loss).

        In the finish phase an image below ε never changes again, so every ``compact_every`` finish steps the
        images still at work continue in a smaller batch: one host read of the flags between two steps (the
        steps themselves never read the device), and the result equals the uncompacted loop's up to the
        rounding of another batch size. step: a different step function for this batch (the ablations); it
        runs eagerly on a loop of its own, without compaction.
        """
        self.prepared(setup.x)
        shape = tuple(setup.x.shape)
        if step is not None:
            loop, captured = self._new_loop(shape, step), None
        else:
            loop, captured = self._cached_loop(shape, lambda fresh: self._load(fresh, setup))
        self._load(loop, setup)
        config = self.config
        every = self.options.compact_every if step is None else 0
        result = None  # the batch's images once the loop no longer holds them all
        rows = torch.arange(shape[0], device=self.device)  # the batch row of each of the loop's images
        real = shape[0]  # the loop's first `real` images are real; the rest pad a CUDA bucket
        total = config.total_steps
        for t in range(total):
            loss, flags = captured.replay() if captured is not None else loop.step()
            if self.observer is not None:
                self.observer(StepRecord(t, loss, flags, None if result is None else rows))
            if progress is not None:
                progress(t + 1, total)
            finished = t + 1 - config.steps
            if not (every and finished > 0 and finished % every == 0 and t + 1 < total):
                continue
            keep = torch.nonzero(flags.do_co[:real]).flatten()  # the host read, once per `every` finish steps
            if keep.numel() == real:
                continue
            result = self._write_back(result, loop, rows, real)
            if keep.numel() == 0:
                loop = None
                break
            loop, captured = self._compacted_loop(loop, keep, t + 1)
            rows = torch.cat([rows.index_select(0, keep), rows[keep[-1:]].expand(loop.shape[0] - keep.numel())])
            real = keep.numel()
        if loop is not None:
            result = self._write_back(result, loop, rows, real)
        with torch.no_grad():
            final = per_image_loss(self._prepared.exact_features(result), setup.target)
        return result, final

    @staticmethod
    def _write_back(result: torch.Tensor | None, loop: FadeLoop, rows: torch.Tensor, real: int) -> torch.Tensor:
        """The batch's images with the loop's real ones copied in at their rows."""
        if result is None and real == loop.shape[0]:
            return loop.xp.clone()
        result.index_copy_(0, rows[:real], loop.xp[:real])
        return result

    def protect_batch(self, pixels: torch.Tensor, keys: torch.Tensor, *, start: torch.Tensor | None = None,
                      progress: StepProgress | None = None) -> BatchResult:
        """One batch of pixels [B, 3, H, W] in [0, 1] (on the model's device), protected; ``start``: as in
        ``protect_all``."""
        setup = self.setup(pixels, keys, start)
        xp, final = self.run(setup, progress=progress)
        return BatchResult(self.space.to_pixels(xp), final, setup.epsilon)

    def protect_all(self, images: torch.Tensor, keys: torch.Tensor, batch_size: int | None = None, *,
                    start: torch.Tensor | None = None, run_batch: BatchRun | None = None,
                    progress: ImageProgress | None = None) -> BatchResult:
        """Protect ``images`` (pixels [N, 3, H, W] in [0, 1], any device) ``batch_size`` at a time, in order.

        keys: int64 per-image keys (their noise and masks). batch_size: default 128 on CUDA, 16 on the CPU; the
        bits depend on it (see ``protect``). start: pixels [N, 3, H, W] to start from instead of the images
        (refining); targets, bounds and ε stay the images'. run_batch(rows, setup) -> (pixels, final loss):
        another loop for each set-up batch (the ablations, AVIH) instead of ``protect_batch``'s. progress:
        called with (images done, images in all), as the steps go (or after each batch, with run_batch).
        The result's tensors lie on the images' device.
        """
        count, device = images.shape[0], images.device
        batch_size = batch_size or DEFAULT_BATCH.get(self.device.type, 16)
        pixels = torch.empty(images.shape, dtype=torch.float32, device=device)
        final_loss = torch.empty(count, dtype=torch.float32, device=device)
        epsilon = torch.empty(count, dtype=torch.float32, device=device)
        for first in range(0, count, batch_size):
            rows = slice(first, min(first + batch_size, count))
            batch = images[rows].to(self.device)
            batch_start = None if start is None else start[rows].to(self.device)
            if run_batch is None:
                def step_progress(done: int, steps: int, first: int = first, size: int = rows.stop - first) -> None:
                    progress(first + size * done / steps, count)

                result = self.protect_batch(batch, keys[rows], start=batch_start,
                                            progress=None if progress is None else step_progress)
                pixels[rows], final_loss[rows], epsilon[rows] = result.pixels, result.final_loss, result.epsilon
            else:
                setup = self.setup(batch, keys[rows], batch_start)
                pixels[rows], final_loss[rows] = run_batch(rows, setup)
                epsilon[rows] = setup.epsilon
                if progress is not None:
                    progress(rows.stop, count)
        return BatchResult(pixels, final_loss, epsilon)
