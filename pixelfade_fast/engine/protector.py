"""``Protector``: one model, config, backend and set of speed options, protecting batch after batch.

Everything that does not change between batches is done once here: the backend is resolved, the model is
prepared (BatchNorm folded, channels_last, compiled), and each batch shape gets one ``FadeLoop`` (and, on CUDA,
one captured graph) that every later batch of that shape reuses. ``protect()``, the gallery command, the
ablations and the AVIH baseline all set their batches up through ``setup`` so that they agree on the input
space, the targets, the clamp bounds and the mask ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .. import _backend, ops
from ..config import FadeConfig
from .acceleration import Acceleration, PreparedModel, prepare_model
from .checks import check_features
from .features import frozen, model_device, normalisation
from .graph import CapturedStep
from .loop import FadeLoop, Observer, StepRecord
from .step import PixelQuantizer, StepFn, fused_step

StepProgress = Callable[[int, int], None]  # (steps done, steps in all) of the batch in flight


@dataclass
class BatchSetup:
    """A batch ready for the loop: pixels and normalised images, fp32 targets f0, keys, bounds, mask ids."""

    pixels: torch.Tensor  # float32 [B, C, H, W] in [0, 1]
    x: torch.Tensor  # (pixels - mean) / std
    target: torch.Tensor  # float32 [B, D]
    keys: torch.Tensor  # int64 [B, 2]
    lo: torch.Tensor  # float32 [C]
    hi: torch.Tensor  # float32 [C]
    mask_ids: torch.Tensor  # uint8 [B, C, H, W]
    epsilon: torch.Tensor  # float32 [B]: each image's ε (absolute, or relative to its features' scale)


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
    eval mode, no weight gradients; its settings are restored on exit)."""

    def __init__(self, model: nn.Module, config: FadeConfig | None = None, *, backend: str | None = "auto",
                 acceleration: Acceleration | None = None, observer: Observer | None = None) -> None:
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
        self.mean, self.std = normalisation(model, 3, self.device)
        self.quantizer = PixelQuantizer(self.mean, self.std) if config.quantize else None
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
    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() - self.mean.reshape(1, -1, 1, 1)) / self.std.reshape(1, -1, 1, 1)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.std.reshape(1, -1, 1, 1) + self.mean.reshape(1, -1, 1, 1)).clamp_(0.0, 1.0)

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
        x = self.normalise(pixels)
        with torch.no_grad():
            target = self.prepared(x).exact_features(x).float()
        check_features(target, x.shape[0])
        return x, target

    def setup(self, pixels: torch.Tensor, keys: torch.Tensor) -> BatchSetup:
        """Normalise a batch of pixels [B, 3, H, W] in [0, 1], compute its targets and step constants."""
        x, target = self.targets(pixels)
        channels = x.shape[1]
        if self.config.clamp == "pixel":
            lo, hi = -self.mean / self.std, (1.0 - self.mean) / self.std
        else:  # the released code's batch-global bounds
            lo, hi = x.min().expand(channels).float(), x.max().expand(channels).float()
        keys = keys.to(self.device)
        mask_ids = ops.fade_mask_ids(keys, x.shape[1:], self.config.num_masks, self.config.pixel_masks,
                                     backend=self.backend)
        return BatchSetup(pixels.float(), x, target, keys, lo.contiguous(), hi.contiguous(), mask_ids,
                          self.config.epsilon_of(target))

    # ------------------------------------------------------------------------------------------ the loop
    def _new_loop(self, setup: BatchSetup, step: StepFn) -> FadeLoop:
        return FadeLoop(self.prepared(setup.x).loop_features, self.config, tuple(setup.x.shape), self.device, step,
                        self.quantizer)

    def _cached_loop(self, setup: BatchSetup) -> tuple[FadeLoop, CapturedStep | None]:
        shape = tuple(setup.x.shape)
        if shape not in self._loops:
            loop = self._new_loop(setup, self._step)
            captured = None
            if self.options.cuda_graph:
                self._load(loop, setup)
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

    def run(self, setup: BatchSetup, *, step: StepFn | None = None,
            progress: StepProgress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run every step on a set-up batch; returns (protected normalised images, per-image final loss).

        step: a different step function for this batch (the ablations); it runs eagerly on a loop of its own.
        """
        loop, captured = (self._new_loop(setup, step), None) if step is not None else self._cached_loop(setup)
        self._load(loop, setup)
        total = self.config.total_steps
        for t in range(total):
            loss, flags = captured.replay() if captured is not None else loop.step()
            if self.observer is not None:
                self.observer(StepRecord(t, loss, flags))
            if progress is not None:
                progress(t + 1, total)
        final = loop.final_loss(self.prepared(setup.x).exact_features)
        return loop.xp.clone(), final.clone()

    def protect_batch(self, pixels: torch.Tensor, keys: torch.Tensor, *,
                      progress: StepProgress | None = None) -> BatchResult:
        """One batch of pixels [B, 3, H, W] in [0, 1], protected."""
        setup = self.setup(pixels, keys)
        xp, final = self.run(setup, progress=progress)
        return BatchResult(self.to_pixels(xp), final, setup.epsilon)
