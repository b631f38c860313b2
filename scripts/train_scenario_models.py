"""Reproduce the two bundled scenario models with their model cards (text-to-image and visible-infrared Re-ID).

    python scripts/train_scenario_models.py [--models dual vi] [--data-dir DIR] [--out-dir pixelfade_fast/assets]

Generates the SynthPed split of pixelfade_fast.training.scenarios (fixed seed; visible and infrared cameras,
captions) into DIR (default: a temporary folder, removed afterwards), then trains
- the dual encoder (OSNet-x0.25 image branch + transformer text branch, symmetric InfoNCE + identity loss) on
  the visible training images and their captions: dual_encoder_synthped.safetensors, DUAL_ENCODER_CARD.md;
- the cross-modality model (OSNet-x0.25, cross-entropy + triplet over visible and infrared training images):
  osnet_x0_25_synthped_vi.safetensors, CROSS_MODALITY_CARD.md;
and scores both on the split's test identities. On the CPU the same torch version and thread count give the
same weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from pixelfade_fast.data import generate_synthped
from pixelfade_fast.data.captions import caption_vocabulary, read_captions
from pixelfade_fast.data.records import ReIDSplit
from pixelfade_fast.evaluation.reid_metrics import chance_levels
from pixelfade_fast.evaluation.text_to_image import evaluate_dual_encoder, text_queries
from pixelfade_fast.evaluation.visible_infrared import (INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED, by_modality,
                                                        cross_modality_scores)
from pixelfade_fast.training import save_checkpoint, train_reid
from pixelfade_fast.training.contrastive import ContrastiveSettings, train_dual_encoder
from pixelfade_fast.training.provenance import machine, sha256
from pixelfade_fast.training.scenarios import (CROSS_MODALITY_MODEL, CROSS_MODALITY_TRAINING, DUAL_ENCODER_SPEC,
                                               DUAL_ENCODER_TRAINING, INFRARED_CAMIDS, INIT_WEIGHTS,
                                               SCENARIO_SYNTHPED)
from pixelfade_fast.training.trainer import TrainSettings

REPO = Path(__file__).resolve().parent.parent
INIT = REPO / "pixelfade_fast" / "assets" / INIT_WEIGHTS
DUAL_NAME, DUAL_CARD = "dual_encoder_synthped.safetensors", "DUAL_ENCODER_CARD.md"
VI_NAME, VI_CARD = "osnet_x0_25_synthped_vi.safetensors", "CROSS_MODALITY_CARD.md"
METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")


def _row(scores: dict) -> str:
    return " | ".join(f"{100 * scores[k]:.1f}%" for k in METRICS)


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _synthped_call() -> str:
    return "generate_synthped(out_dir, " + ", ".join(f"{k}={v!r}" for k, v in SCENARIO_SYNTHPED.items()) + ")"


def _visible(split: ReIDSplit) -> ReIDSplit:
    def keep(records):
        return by_modality(records, INFRARED_CAMIDS)[0]
    return ReIDSplit(train=keep(split.train), query=keep(split.query), gallery=keep(split.gallery))


def train_dual(split: ReIDSplit, data_dir: Path, out_dir: Path, device: str, host: str, command: str,
               overrides: dict) -> dict:
    visible = _visible(split)
    captions = {k: v for folder in ("bounding_box_train", "query", "bounding_box_test")
                for k, v in read_captions(data_dir / folder).items()}
    weights = out_dir / DUAL_NAME
    model, metrics = train_dual_encoder(
        visible, captions, caption_vocabulary(), spec=DUAL_ENCODER_SPEC, device=device, checkpoint=weights,
        checkpoint_metadata={"model_id": "dual_encoder_synthped",
                             "train_data": "SynthPed " + json.dumps(SCENARIO_SYNTHPED)},
        evaluate=lambda m: evaluate_dual_encoder(m, visible.query, visible.gallery, captions),
        init_image_weights=INIT, **(DUAL_ENCODER_TRAINING | overrides))
    texts, pids = text_queries(visible.query, captions)
    chance = chance_levels(pids, None, [r.pid for r in visible.gallery], [r.camid for r in visible.gallery])
    settings = ContrastiveSettings(**(DUAL_ENCODER_TRAINING | overrides))
    spec = DUAL_ENCODER_SPEC
    card = f"""# Model card: dual_encoder_synthped

A text-image dual encoder for text-to-image person retrieval, shipped so that `pixelfade evaluate --task t2i`
runs without downloading anything. It has only seen synthetic SynthPed pedestrians and their generated
captions (a closed vocabulary of {len(model.tokenizer) - 2} words): it says nothing about real people or real
descriptions. Its image branch is the authorised model PixelFade protects a gallery with.

## Model
- Image branch (`model.image`, a `FeatureExtractor`): `{spec.image_model}` (OSNet, width x0.25, its 512-d fc
  embedding), then a linear projection to {spec.embed_dim} dimensions; {_parameters(model.image):,} parameters.
  Input {spec.input_size[0]}x{spec.input_size[1]} RGB in [0, 1], ImageNet mean / std.
- Text branch (`model.text`): word embeddings ({spec.text_width}-d) + learned positions (at most
  {spec.max_length} words), a {spec.text_layers}-layer pre-norm transformer ({spec.text_heads} heads, feed-forward
  {2 * spec.text_width}), layer norm, mean over the words, linear projection to {spec.embed_dim};
  {_parameters(model.text):,} parameters.
- Tokenizer: our own word-level tokenizer (`WordTokenizer`): lower-case letter runs, ids 0 padding, 1 unknown
  word, then the {len(model.tokenizer) - 2} words of `caption_vocabulary()`, stored in the file's metadata. No
  library tokenizer: the vocabulary is closed and known, and pretrained tokenizers cannot be downloaded here.
- Similarity: cosine; learned temperature {1 / float(model.logit_scale.exp()):.4f} at the end of training.
- File: `{DUAL_NAME}`, {weights.stat().st_size:,} bytes, sha256 `{sha256(weights)}`; format in
  `pixelfade_fast/models/dual_encoder.py` (`load_dual_encoder`).
- Initialisation: the OSNet of the bundled demo model (`{INIT_WEIGHTS}`: trained for Re-ID on the visible
  images of the same 100 training identities, see MODEL_CARD.md); projection and text branch random
  (seed {settings.seed}). No other pretraining.

## Training data
SynthPed (`pixelfade_fast/data/synthped.py`, captions by `data/captions.py`), called as

```
{_synthped_call()}
```

Training uses the visible images of its {metrics['num_train_ids']} training identities
({metrics['num_train_images']} images, two cameras) and their captions (two per image, one drawn per image and
step). No real image or text was used.

## Training
- Loss: symmetric InfoNCE over image-caption pairs with a learnable temperature (CLIP), every pair of one
  identity counted as a positive, plus label-smoothed ({settings.label_smoothing}) cross-entropy of a shared
  identity classifier on both embeddings (weight {settings.id_weight}); `training/contrastive.py`.
- Batches: P={settings.p} identities x K={settings.k} images; {settings.epochs} epochs; Adam, lr {settings.lr}
  (image branch, classifier) and {settings.text_lr} (text branch, temperature), weight decay
  {settings.weight_decay}; {settings.warmup_epochs} warm-up epochs, then cosine decay to 1%.
- Augmentation (images): flip, pad-and-crop, random erasing (the Re-ID trainer's).
- Time: {metrics['train_seconds'] / 60:.1f} min of training on {host}.

## Test scores
The test part of the same call: {len(visible.pids('query'))} identities never seen in training; queries are the
{len(texts)} captions of the {len(visible.query)} visible query images, the gallery the {len(visible.gallery)}
visible gallery images. A text query has no camera: every gallery image of its identity is a match
(`evaluate_reid` with `q_camids=None`); cosine similarity.

| | R1 | R5 | R10 | mAP | mINP |
| --- | ---: | ---: | ---: | ---: | ---: |
| dual encoder | {_row(metrics)} |
| chance (random ranking) | {_row(chance)} |

## Limitations
Synthetic data only; captions are generated from the identity's attributes, so they never contradict the
image and their vocabulary is closed; many SynthPed identities share their attributes, so text cannot tell
them apart and the scores stay far below 100%.

## Reproduce
```
{command}
```
"""
    (out_dir / DUAL_CARD).write_text(card)
    return {k: v for k, v in metrics.items() if k != "history"}


def train_cross_modality(split: ReIDSplit, out_dir: Path, device: str, host: str, command: str,
                         overrides: dict) -> dict:
    weights = out_dir / VI_NAME
    recipe = CROSS_MODALITY_TRAINING | overrides
    model, metrics = train_reid(CROSS_MODALITY_MODEL, split, device=device, evaluate=False, init_weights=INIT,
                                **recipe)
    scores = cross_modality_scores(model, split, INFRARED_CAMIDS)
    metadata = {"model_id": "osnet_x0_25_synthped_vi", "train_data": "SynthPed " + json.dumps(SCENARIO_SYNTHPED),
                "train_settings": json.dumps(recipe | {"input_size": list(model.input_size)}),
                "init_weights": INIT_WEIGHTS,
                "infrared_camids": json.dumps(list(INFRARED_CAMIDS)), "test_scores": json.dumps(scores)}
    save_checkpoint(model, weights, metadata)
    q_vis, q_ir = by_modality(split.query, INFRARED_CAMIDS)
    g_vis, g_ir = by_modality(split.gallery, INFRARED_CAMIDS)

    def ids(records):
        return [r.pid for r in records], [r.camid for r in records]
    chance = {VISIBLE_TO_INFRARED: chance_levels(*ids(q_vis), *ids(g_ir)),
              INFRARED_TO_VISIBLE: chance_levels(*ids(q_ir), *ids(g_vis))}
    settings = TrainSettings(**recipe)
    card = f"""# Model card: osnet_x0_25_synthped_vi

A cross-modality (visible-infrared) person Re-ID model shipped so that `pixelfade evaluate --task vi` runs
without downloading anything. It has only seen synthetic SynthPed pedestrians under SynthPed's visible and
infrared-like cameras (`data/synthped_infrared.py`: a thermal-like mapping, no colour); it says nothing about
real thermal or near-infrared cameras.

## Model
- Architecture: `{CROSS_MODALITY_MODEL}` (OSNet, width x0.25, 512-d fc embedding), one network for both
  modalities; {_parameters(model):,} parameters, no classifier in the file. Feature layer `fc`.
- Input: {settings.input_size[0]}x{settings.input_size[1]} RGB in [0, 1] (an infrared image has R = G = B),
  ImageNet mean / std. Loads with `build_model("osnet_x0_25", pretrained_path=...)` or
  `pixelfade ... --weights`.
- File: `{VI_NAME}`, {weights.stat().st_size:,} bytes, sha256 `{sha256(weights)}`.
- Initialisation: the bundled demo model (`{INIT_WEIGHTS}`: trained for Re-ID on the visible images of the
  same 100 training identities, see MODEL_CARD.md); the classifier random (seed {settings.seed}). No other
  pretraining.

## Why a modality-shared network
The paper's baseline (AGW) is one network over both modalities trained with identity and triplet losses. The
same recipe here is the existing Re-ID trainer unchanged: PK batches are drawn from the images of all four
cameras, half of them infrared, so the K=4 images of an identity in a batch hold both modalities in 91% of the
draws (all of one modality: 2·C(10,4)/C(20,4) = 9%), and the identity and triplet losses pull both modalities of
a person together. A grayscale augmentation of the visible images was not used: in the thermal-like mapping a
dark fabric is bright, so a grey visible image is not what the infrared camera sees.

## Training data
SynthPed, called as

```
{_synthped_call()}
```

Training uses all images of its {metrics['num_train_ids']} training identities ({metrics['num_train_images']}
images: two visible and two infrared cameras). No real image was used.

## Training
- Losses: label-smoothed cross-entropy (smoothing {settings.label_smoothing}) on an identity classifier over
  the fc embedding, plus batch-hard triplet (margin {settings.triplet_margin}) on the pooled feature.
- Batches: P={settings.p} x K={settings.k}; {settings.epochs} epochs; Adam, lr {settings.lr}, weight decay
  {settings.weight_decay}; {settings.warmup_epochs} warm-up epochs, then cosine decay to 1%; flip,
  pad-and-crop, random erasing.
- Time: {metrics['train_seconds'] / 60:.1f} min of training on {host}.

## Test scores
The test part of the same call, {len(split.pids('query'))} identities never seen in training. Every match is
across modalities (hence across cameras: nothing is removed by the same-camera rule); L2-normalised fc features.

| direction | queries | gallery | R1 | R5 | R10 | mAP | mINP |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| visible -> infrared | {len(q_vis)} | {len(g_ir)} | {_row(scores[VISIBLE_TO_INFRARED])} |
| chance | | | {_row(chance[VISIBLE_TO_INFRARED])} |
| infrared -> visible | {len(q_ir)} | {len(g_vis)} | {_row(scores[INFRARED_TO_VISIBLE])} |
| chance | | | {_row(chance[INFRARED_TO_VISIBLE])} |

## Limitations
Synthetic data only; the infrared camera is a documented mapping of SynthPed's scene, not a sensor model;
without colour many SynthPed identities look alike, so the cross-modality scores stay far below the
visible-visible ones.

## Reproduce
```
{command}
```
"""
    (out_dir / VI_CARD).write_text(card)
    return {"train_seconds": metrics["train_seconds"], **scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=("dual", "vi"), default=["dual", "vi"])
    parser.add_argument("--data-dir", help="empty or new folder for the generated SynthPed set "
                                           "(default: a temporary folder, removed at the end)")
    parser.add_argument("--out-dir", default=str(REPO / "pixelfade_fast" / "assets"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, help="override both recipes' epochs (smoke runs; the card says so)")
    args = parser.parse_args(argv)
    overrides = {} if args.epochs is None else {"epochs": args.epochs, "warmup_epochs": 0}
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    host = machine(args.device, args.threads)
    command = "python scripts/train_scenario_models.py --models " + " ".join(args.models) + (
        f" --threads {args.threads}" if args.threads != 1 else "") + (
        f" --epochs {args.epochs}" if args.epochs is not None else "")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synthped_scenarios_") as scratch:
        data_dir = Path(args.data_dir) if args.data_dir else Path(scratch)
        if (data_dir / "bounding_box_train").is_dir():
            from pixelfade_fast.data import read_market1501
            split = read_market1501(data_dir)
        else:
            print(f"generating SynthPed into {data_dir}: {SCENARIO_SYNTHPED}", file=sys.stderr, flush=True)
            split = generate_synthped(data_dir, **SCENARIO_SYNTHPED)
        results = {}
        if "dual" in args.models:
            results["dual"] = train_dual(split, data_dir, out_dir, args.device, host, command, overrides)
        if "vi" in args.models:
            results["vi"] = train_cross_modality(split, out_dir, args.device, host, command, overrides)
    print(json.dumps(results, indent=2))
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
