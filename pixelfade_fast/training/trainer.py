"""train_reid: trains a model-zoo network for Re-ID (cross-entropy + triplet, PK batches) and scores it."""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial

import torch

from ..data.images import load_images
from ..data.records import ReIDSplit, Record
from ..engine import extract_features
from ..evaluation.reid_metrics import evaluate_reid
from ..models import ReIDModel, build_model, load_weights
from .augment import augment_batch
from .checkpoint import save_checkpoint
from .heads import training_outputs
from .losses import batch_hard_triplet, smoothed_cross_entropy
from .lr_schedule import SCHEDULES, learning_rate
from .sampler import PKSampler

LOAD_CHUNK = 256  # images decoded per load_images call


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of a training run (defaults: a "bag of tricks" baseline, Luo et al. 2019,
    with a cosine decay); recorded in the checkpoint's metadata."""

    input_size: tuple[int, int] = (256, 128)
    epochs: int = 60
    p: int = 16  # identities per batch
    k: int = 4  # images per identity in a batch
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 5
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()  # epochs where the "step" schedule multiplies the rate by gamma
    gamma: float = 0.1
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    pad_fraction: float = 0.04  # pad-and-crop translation, as a fraction of the input height
    seed: int = 0
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 16 for s in size):
            raise ValueError(f"input_size must be (height, width), two ints >= 16, got {self.input_size!r}")
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        for name in ("epochs", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be an int in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got lr={self.lr!r}, "
                             f"weight_decay={self.weight_decay!r}")
        if not 0 <= self.pad_fraction < 0.5:
            raise ValueError(f"pad_fraction must be in [0, 0.5), got {self.pad_fraction!r}")


@dataclass
class _EpochTotals:
    """Sums over the batches of one epoch, kept on the device and read once at its end."""

    loss: list[torch.Tensor] = field(default_factory=list)
    cross_entropy: list[torch.Tensor] = field(default_factory=list)
    triplet: list[torch.Tensor] = field(default_factory=list)
    correct: list[torch.Tensor] = field(default_factory=list)
    images: int = 0

    def summary(self) -> dict:
        def mean(parts: list[torch.Tensor]) -> float:
            return float(torch.stack(parts).mean())
        return {"loss": mean(self.loss), "cross_entropy": mean(self.cross_entropy),
                "triplet": mean(self.triplet),
                "accuracy": float(torch.stack(self.correct).sum()) / max(self.images, 1)}


def progress_writer(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


def training_metadata(config, metrics: dict, extra: dict | None = None) -> dict[str, str]:
    """A checkpoint's metadata: the training settings, the scores and ``extra``. No timings: the same run then
    writes the same bytes."""
    scores = {k: v for k, v in metrics.items() if k not in ("history", "train_seconds")}
    return {"train_settings": json.dumps(asdict(config)), "train_metrics": json.dumps(scores), **(extra or {})}


def load_uint8(records: Sequence[Record], size: tuple[int, int], num_workers: int) -> torch.Tensor:
    """All images of ``records`` at ``size`` as uint8 [N, 3, H, W] (a quarter of float32 memory)."""
    chunks = []
    for first in range(0, len(records), LOAD_CHUNK):
        pixels = load_images([r.path for r in records[first:first + LOAD_CHUNK]], size, num_workers)
        chunks.append(pixels.mul_(255.0).round_().to(torch.uint8))
    return torch.cat(chunks)


@torch.no_grad()
def record_features(model: ReIDModel, records: Sequence[Record], batch_size: int = 128,
                     num_workers: int = 0) -> torch.Tensor:
    """Features [N, D] (on the CPU) of the images of ``records``, resized to the model's input size."""
    features = []
    for first in range(0, len(records), batch_size):
        pixels = load_images([r.path for r in records[first:first + batch_size]], model.input_size, num_workers)
        features.append(extract_features(model, pixels, batch_size))
    return torch.cat(features)


def evaluate_model(model: ReIDModel, split: ReIDSplit, batch_size: int = 128, num_workers: int = 0) -> dict:
    """evaluate_reid (rank-1/5/10, mAP, mINP) of the model's features on the split's query / gallery."""
    if not split.query or not split.gallery:
        raise ValueError(f"split has {len(split.query)} query and {len(split.gallery)} gallery images; "
                         f"evaluation needs both")
    query = record_features(model, split.query, batch_size, num_workers)
    gallery = record_features(model, split.gallery, batch_size, num_workers)
    return evaluate_reid(query, [r.pid for r in split.query], [r.camid for r in split.query],
                         gallery, [r.pid for r in split.gallery], [r.camid for r in split.gallery])


def training_records(split: ReIDSplit) -> tuple[list[Record], torch.Tensor, int]:
    """Train records of real identities (pid >= 1: not junk, not distractor) and their labels 0..C-1."""
    records = [r for r in split.train if r.pid >= 1]
    if not records:
        raise ValueError(f"split.train holds no images of identities with pid >= 1 "
                         f"({len(split.train)} records in all): nothing to train on")
    label_of = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return records, torch.tensor([label_of[r.pid] for r in records]), len(label_of)


def _run_epoch(backbone: torch.nn.Module, optimizer: torch.optim.Optimizer, *, batches: list[list[int]],
               images: torch.Tensor, labels: torch.Tensor, normalisation: tuple[torch.Tensor, torch.Tensor],
               augment: Callable[[torch.Tensor], torch.Tensor], config: TrainSettings) -> _EpochTotals:
    """One optimiser step per batch of indices into images (uint8, CPU) and labels."""
    mean, std = normalisation
    totals = _EpochTotals()
    for batch in batches:
        index = torch.tensor(batch)
        x = augment((images[index].to(mean.device).float().div_(255.0) - mean) / std)
        y = labels[index].to(mean.device)
        features, logits = training_outputs(backbone, x)
        cross_entropy = smoothed_cross_entropy(logits, y, config.label_smoothing)
        triplet = batch_hard_triplet(features, y, config.triplet_margin)
        loss = cross_entropy + triplet
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals.loss.append(loss.detach())
        totals.cross_entropy.append(cross_entropy.detach())
        totals.triplet.append(triplet.detach())
        totals.correct.append((logits.detach().argmax(1) == y).sum())
        totals.images += len(batch)
    return totals


def train_reid(model_name: str, split: ReIDSplit, *, device: str | torch.device = "cpu",
               progress: bool | Callable[[str], None] = True, checkpoint: str | os.PathLike | None = None,
               checkpoint_metadata: dict[str, str] | None = None, init_weights: str | os.PathLike | None = None,
               evaluate: bool = True, num_workers: int = 0, **settings) -> tuple[ReIDModel, dict]:
    """Train ``model_name`` (a build_model name) on ``split.train``, then score it on query / gallery.

    ``settings`` are the fields of :class:`TrainSettings` (input_size, epochs, p, k, lr, seed, ...).
    Each epoch runs the PK batches of :class:`PKSampler`; the loss is label-smoothed cross-entropy on
    the identity classifier plus the batch-hard triplet loss on the pooled feature (see heads.py); Adam with
    linear warm-up and cosine or step decay; flip, pad-and-crop and random-erasing augmentation. One
    line per epoch (loss, classifier accuracy on the training batches, learning rate, time) goes to
    ``progress`` (True: stderr; a callable gets each line). On the CPU a seed gives the same weights.
    ``init_weights``: a local checkpoint to start from (matching tensors only; the classifier is new).

    Returns the trained model as an inference ReIDModel without classifier (on ``device``) and a dict
    with the evaluate_reid scores (when ``evaluate`` and the split has query and gallery images),
    "history" (one dict per epoch), "train_seconds" and the training set sizes. With ``checkpoint``
    the model is written there (.safetensors, atomically), its metadata holding the settings and scores.
    """
    config = TrainSettings(**settings)
    write = progress_writer(progress)
    device = torch.device(device)
    records, labels, num_classes = training_records(split)
    sampler = PKSampler(labels.tolist(), config.p, config.k, seed=config.seed)

    write(f"loading {len(records)} training images of {num_classes} identities at "
          f"{config.input_size[0]}x{config.input_size[1]}")
    images = load_uint8(records, config.input_size, num_workers)
    trainee = build_model(model_name, num_classes=num_classes, input_size=config.input_size,
                          seed=config.seed, pretrained_path=init_weights, strict=False)
    backbone = trainee.backbone.to(device).train()
    mean, std = trainee.mean.to(device), trainee.std.to(device)
    optimizer = torch.optim.Adam(backbone.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    augment = partial(augment_batch, generator=generator, pad=round(config.pad_fraction * config.input_size[0]))

    history = []
    started = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        lr = learning_rate(epoch, config.lr, config.epochs, warmup_epochs=config.warmup_epochs,
                           schedule=config.schedule, milestones=config.milestones, gamma=config.gamma)
        for group in optimizer.param_groups:
            group["lr"] = lr
        totals = _run_epoch(backbone, optimizer, batches=sampler.epoch_batches(epoch), images=images,
                            labels=labels, normalisation=(mean, std), augment=augment, config=config)
        stats = {"epoch": epoch + 1, "lr": lr, **totals.summary(),
                 "seconds": time.perf_counter() - epoch_start}
        history.append(stats)
        write(f"epoch {epoch + 1}/{config.epochs}  loss {stats['loss']:.4f} (ce {stats['cross_entropy']:.4f}, "
              f"triplet {stats['triplet']:.4f})  acc {100 * stats['accuracy']:.1f}%  lr {lr:.2e}  "
              f"{stats['seconds']:.1f} s")
    train_seconds = time.perf_counter() - started

    model = build_model(model_name, input_size=config.input_size, model_id=model_name, seed=config.seed)
    load_weights(model, backbone.state_dict())  # the classifier is left out: features only
    model = model.to(device)
    metrics: dict = {"history": history, "train_seconds": train_seconds, "num_train_ids": num_classes,
                     "num_train_images": len(records)}
    if evaluate and split.query and split.gallery:
        scores = evaluate_model(model, split, config.eval_batch_size, num_workers)
        metrics.update(scores)
        write("test: " + "  ".join(f"{key} {100 * scores[key]:.1f}%" for key in
                                   ("rank1", "rank5", "rank10", "mAP", "mINP")))
    if checkpoint is not None:
        save_checkpoint(model, checkpoint, training_metadata(config, metrics, checkpoint_metadata))
        write(f"wrote {checkpoint}")
    return model, metrics
