"""Model-side speed options of the engine, and the model as the loop calls it.

Each option changes how the authorised model is evaluated, not what PixelFade computes; the measured effect of
each is in bench/results (bench/bench_e2e.py) and docs/performance.md. The bits of a protected image depend on
the options (folded weights and bf16 round differently), so the gallery records them in its run record.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..feature_model import features_of
from .features import FeatureFn
from .fold_batchnorm import FoldError, fold_batchnorm


@dataclass(frozen=True)
class Acceleration:
    """How the engine evaluates the model. ``None`` means "the default for the device" (see ``resolved``).

    fold_batchnorm: fold eval-mode BatchNorm into the preceding conv/linear layers (features equal within 1e-5
        relative; refused, with the reason in the timings, when the check fails).
    channels_last: NHWC memory layout for the model and its input (default: on CUDA).
    amp: bf16 autocast for the forward/backward; the master image, the targets and the final ε check stay fp32.
    compile: torch.compile of the model's forward (and through AOTAutograd its backward).
    cuda_graph: capture one whole step (forward, backward, schedule, fused step) in a CUDA graph and replay it
        for every step (default: on CUDA); falls back to eager with the reason in the timings.
    compact_every: every this many finish steps, continue only the images still above ε, in a smaller batch
        (0: never; the finish phase then computes every image of the batch to the end).
    """

    fold_batchnorm: bool | None = None
    channels_last: bool | None = None
    amp: bool = False
    compile: bool = False
    cuda_graph: bool | None = None
    compact_every: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.compact_every, bool) or not isinstance(self.compact_every, int) or self.compact_every < 0:
            raise ValueError(f"Acceleration.compact_every must be an integer >= 0, got {self.compact_every!r}")

    def resolved(self, device: torch.device) -> Acceleration:
        """The options with every ``None`` replaced by the device's default."""
        on_cuda = torch.device(device).type == "cuda"
        return dataclasses.replace(
            self,
            fold_batchnorm=True if self.fold_batchnorm is None else self.fold_batchnorm,
            channels_last=on_cuda if self.channels_last is None else self.channels_last,
            cuda_graph=on_cuda if self.cuda_graph is None else self.cuda_graph)

    def given_or(self, recorded: dict) -> Acceleration:
        """These options, each one not given (None) taken from ``recorded`` (a run record's resolved options):
        how a resumed or refined run keeps the choice its run made (tuned or by default)."""
        return dataclasses.replace(self, **{name: recorded[name] for name in ("fold_batchnorm", "channels_last",
                                                                              "cuda_graph")
                                            if getattr(self, name) is None and name in recorded})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PreparedModel:
    """The model as the loop calls it: ``loop_features`` (with the speed options) for the steps, and
    ``exact_features`` (fp32, no autocast) for the targets and the final ε check."""

    module: nn.Module
    loop_features: FeatureFn
    exact_features: FeatureFn
    notes: dict  # what was applied, and why an option was not


def _feature_fn(module: Callable, *, amp: bool, channels_last: bool, feature_norm: bool,
                device: torch.device) -> FeatureFn:
    def features(x: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # No weight-cast cache: it only lives for one autocast region anyway, and cached casts made outside a
        # CUDA-graph capture must not be read inside it (PyTorch's advice for autocast with graphs).
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp, cache_enabled=False):
            out = features_of(module(x))
        out = out.float()
        return torch.nn.functional.normalize(out, dim=1) if feature_norm else out

    return features


def prepare_model(model: nn.Module, options: Acceleration, probe: torch.Tensor, *,
                  feature_norm: bool) -> PreparedModel:
    """Apply ``options`` (resolved) to ``model`` (frozen by the caller); ``probe`` is a batch of the model's input."""
    device = probe.device
    notes: dict = {}
    module = model
    if options.fold_batchnorm:
        try:
            module, report = fold_batchnorm(model, probe)
            notes["fold_batchnorm"] = f"{len(report.folded)} folded (features within {report.relative_change:.1e})"
        except FoldError as error:
            notes["fold_batchnorm"] = f"not folded: {error}"
    if options.channels_last:
        # a copy: converting the caller's model in place would change the layout its other users run with
        module = (copy.deepcopy(module) if module is model else module).to(memory_format=torch.channels_last)
    exact = _feature_fn(module, amp=False, channels_last=options.channels_last, feature_norm=feature_norm,
                        device=device)
    loop_module = torch.compile(module, dynamic=False) if options.compile else module
    loop = _feature_fn(loop_module, amp=options.amp, channels_last=options.channels_last,
                       feature_norm=feature_norm, device=device)
    return PreparedModel(module, loop, exact, notes)
