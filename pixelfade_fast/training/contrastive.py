"""train_dual_encoder: a text-image dual encoder trained with a symmetric contrastive loss (and identity loss).

Batches are the Re-ID trainer's PK batches of images (P identities x K images), each image with one of its
captions drawn at random. The loss is the symmetric InfoNCE of CLIP (Radford et al., 2021) with a learnable
temperature, where every image-caption pair of the same identity counts as a positive (a PK batch holds K of
them per identity; the target spreads evenly over them), plus label-smoothed cross-entropy of a shared identity
classifier on both embeddings (the ID loss of text-to-image Re-ID, e.g. IRRA, Jiang & Ye 2023).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from ..data.records import ReIDSplit
from ..models import load_weights
from ..models.dual_encoder import DualEncoder, DualEncoderSpec, save_dual_encoder
from .augment import augment_batch
from .losses import smoothed_cross_entropy
from .lr_schedule import learning_rate
from .sampler import PKSampler
from .trainer import load_uint8, progress_writer, training_metadata, training_records

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of the inverse temperature


def symmetric_info_nce(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                       logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of image [B, D] and text [B, D] embeddings (row i of both: one pair).

    logits = exp(logit_scale) * cos(image_i, text_j). Image i's target distribution over texts is uniform over
    the texts with labels[j] == labels[i] (the pair itself only, when labels are distinct: CLIP's loss), and the
    same for texts over images; the loss is the mean of the two cross-entropies.
    """
    if image.dim() != 2 or image.shape != text.shape or labels.shape != image.shape[:1]:
        raise ValueError(f"expected image and text [B, D] and labels [B], got {tuple(image.shape)}, "
                         f"{tuple(text.shape)} and {tuple(labels.shape)}")
    logits = logit_scale.exp() * F.normalize(image.float(), dim=1) @ F.normalize(text.float(), dim=1).T
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(1, keepdim=True)  # symmetric: the same for both directions
    image_to_text = -(target * logits.log_softmax(1)).sum(1).mean()
    text_to_image = -(target * logits.T.log_softmax(1)).sum(1).mean()
    return 0.5 * (image_to_text + text_to_image)


@dataclass(frozen=True)
class ContrastiveSettings:
    """Hyper-parameters of a dual-encoder run; recorded in the file's metadata."""

    epochs: int = 60
    p: int = 16
    k: int = 4
    lr: float = 3e-3
    text_lr: float = 1e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 5
    id_weight: float = 1.0
    label_smoothing: float = 0.1
    pad_fraction: float = 0.04
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {self.epochs!r}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be an int in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        if not (self.lr > 0 and self.text_lr > 0 and self.weight_decay >= 0 and self.id_weight >= 0):
            raise ValueError("lr and text_lr must be > 0, weight_decay and id_weight >= 0")


def _run_epoch(model: DualEncoder, classifier: torch.nn.Module, optimizer: torch.optim.Optimizer,
               batches: list[list[int]], *, images: torch.Tensor, tokens: list[list[list[int]]],
               labels: torch.Tensor, augment: Callable, caption_rng: np.random.Generator,
               config: ContrastiveSettings) -> dict:
    """One optimiser step per PK batch (each image with one of its captions); the epoch's mean losses."""
    device = model.logit_scale.device
    mean, std = model.image.mean, model.image.std
    sums = {"loss": 0.0, "info_nce": 0.0, "identity": 0.0}
    for batch in batches:
        index = torch.tensor(batch)
        x = augment((images[index].to(device).float().div_(255.0) - mean) / std)
        chosen = [tokens[i][int(caption_rng.integers(len(tokens[i])))] for i in batch]
        text_ids = torch.zeros(len(chosen), max(map(len, chosen)), dtype=torch.long)
        for row, ids in enumerate(chosen):
            text_ids[row, : len(ids)] = torch.tensor(ids)
        y = labels[index].to(device)
        image_emb, text_emb = model.image(x), model.text(text_ids.to(device))
        contrastive = symmetric_info_nce(image_emb, text_emb, y, model.logit_scale)
        identity = 0.5 * (smoothed_cross_entropy(classifier(image_emb), y, config.label_smoothing)
                          + smoothed_cross_entropy(classifier(text_emb), y, config.label_smoothing))
        loss = contrastive + config.id_weight * identity
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        for key, value in (("loss", loss), ("info_nce", contrastive), ("identity", identity)):
            sums[key] += float(value.detach())
    return {key: value / max(len(batches), 1) for key, value in sums.items()}


def train_dual_encoder(split: ReIDSplit, captions: Mapping[str, Sequence[str]], vocabulary: Sequence[str], *,
                       spec: DualEncoderSpec = DualEncoderSpec(), device: str | torch.device = "cpu",
                       progress: bool | Callable[[str], None] = True, checkpoint: str | os.PathLike | None = None,
                       checkpoint_metadata: dict[str, str] | None = None,
                       evaluate: Callable[[DualEncoder], dict] | None = None,
                       init_image_weights: str | os.PathLike | None = None, **settings) -> tuple[DualEncoder, dict]:
    """Train a DualEncoder on ``split.train`` images and their ``captions`` (image path -> captions).

    ``settings`` are ContrastiveSettings fields. ``init_image_weights``: a Re-ID checkpoint of the image
    backbone to start from (e.g. the bundled demo model; the projection and text branch start random).
    ``evaluate`` (model -> scores) runs after training; its
    scores go into the result and the file's metadata. Returns (model in eval mode on ``device``, metrics with
    "history", "train_seconds" and the training set sizes); with ``checkpoint`` the model is written there.
    On the CPU a seed gives the same weights.
    """
    config = ContrastiveSettings(**settings)
    write = progress_writer(progress)
    device = torch.device(device)
    records, labels, num_classes = training_records(split)
    missing = [r.path for r in records if not captions.get(r.path)]
    if missing:
        raise ValueError(f"{len(missing)} training images have no captions, e.g. {missing[0]!r}")
    sampler = PKSampler(labels.tolist(), config.p, config.k, seed=config.seed)
    write(f"loading {len(records)} training images of {num_classes} identities at "
          f"{spec.input_size[0]}x{spec.input_size[1]}")
    images = load_uint8(records, tuple(spec.input_size), 0)
    model = DualEncoder(spec, vocabulary, seed=config.seed)
    if init_image_weights is not None:
        load_weights(model.image.net[0], init_image_weights)
    model = model.to(device).train()
    tokens = [[model.tokenizer.encode(c) for c in captions[r.path]] for r in records]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        classifier = torch.nn.Linear(spec.embed_dim, num_classes).to(device)
    optimizer = torch.optim.Adam([
        {"params": list(model.image.parameters()) + list(classifier.parameters()), "lr_scale": 1.0},
        {"params": list(model.text.parameters()) + [model.logit_scale], "lr_scale": config.text_lr / config.lr}],
        lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    augment = partial(augment_batch, generator=generator, pad=round(config.pad_fraction * spec.input_size[0]))
    caption_rng = np.random.default_rng([config.seed, 1])

    history = []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the text branch's dropout draws from the global generator
        torch.manual_seed(config.seed + 2)
        for epoch in range(config.epochs):
            epoch_start = time.perf_counter()
            lr = learning_rate(epoch, config.lr, config.epochs, warmup_epochs=config.warmup_epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            stats = {"epoch": epoch + 1, "lr": lr, **_run_epoch(
                model, classifier, optimizer, sampler.epoch_batches(epoch), images=images, tokens=tokens,
                labels=labels, augment=augment, caption_rng=caption_rng, config=config)}
            stats.update(temperature=float(1 / model.logit_scale.detach().exp()),
                         seconds=time.perf_counter() - epoch_start)
            history.append(stats)
            write(f"epoch {epoch + 1}/{config.epochs}  loss {stats['loss']:.4f} (info-nce {stats['info_nce']:.4f}, "
                  f"id {stats['identity']:.4f})  temperature {stats['temperature']:.4f}  lr {lr:.2e}  "
                  f"{stats['seconds']:.1f} s")
    train_seconds = time.perf_counter() - started
    model.eval()
    metrics: dict = {"history": history, "train_seconds": train_seconds, "num_train_ids": num_classes,
                     "num_train_images": len(records)}
    if evaluate is not None:
        scores = evaluate(model)
        metrics.update(scores)
        write("test: " + json.dumps(scores))
    if checkpoint is not None:
        save_dual_encoder(model, checkpoint, training_metadata(config, metrics, checkpoint_metadata))
        write(f"wrote {checkpoint}")
    return model, metrics

