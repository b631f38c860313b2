"""Text-to-image Re-ID over a protected gallery (paper Sec. 4.5, Table 5), with a text-image dual encoder.

Queries are captions (the captions of the split's query images: descriptions of test identities written for
other shots than the gallery's), the gallery is the split's visible gallery images, protected through the dual
encoder's image branch only. Protocol: cosine similarity; a text query has no camera, so no gallery image is
removed (junk, pid −1, aside): every gallery image of the query's identity is a match. R1/R5/R10, mAP, mINP.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from ..config import FadeConfig
from ..data.images import load_images
from ..data.records import Record, ReIDSplit
from ..engine import extract_features
from ..models.dual_encoder import DualEncoder
from .protected_gallery import GalleryResult, run_protected_gallery
from .reid_metrics import chance_levels, evaluate_reid
from .suite import SuiteSettings, subset

DIRECTION = "text->gallery"


def text_queries(records: Sequence[Record], captions: Mapping[str, Sequence[str]]) -> tuple[list[str], list[int]]:
    """(captions, pids) of every caption of ``records``; ValueError naming an image without captions."""
    texts, pids = [], []
    for record in records:
        found = captions.get(record.path)
        if not found:
            raise ValueError(f"no captions for query image {record.path!r}: generate the data with captions")
        texts += list(found)
        pids += [record.pid] * len(found)
    return texts, pids


def text_to_image_scores(text_features: torch.Tensor, text_pids: Sequence[int], gallery_features: torch.Tensor,
                         gallery_records: Sequence[Record]) -> dict:
    """evaluate_reid of text queries (no camera) against gallery features: rank-1/5/10, mAP, mINP."""
    return evaluate_reid(text_features, text_pids, None, gallery_features, [r.pid for r in gallery_records],
                         [r.camid for r in gallery_records])


def evaluate_dual_encoder(model: DualEncoder, query: Sequence[Record], gallery: Sequence[Record],
                          captions: Mapping[str, Sequence[str]]) -> dict:
    """Text-to-image scores of a dual encoder on original images (the test scores of its model card)."""
    texts, pids = text_queries(query, captions)
    pixels = load_images([r.path for r in gallery], model.image.input_size)
    return text_to_image_scores(model.encode_text(texts), pids, extract_features(model.image, pixels), gallery)


def run_text_to_image(model: DualEncoder, split: ReIDSplit, captions: Mapping[str, Sequence[str]],
                      settings: SuiteSettings, *, dataset: str = "", config: FadeConfig | None = None,
                      log: Callable[[str], None] = print) -> GalleryResult:
    """Every method of ``settings`` protecting ``split.gallery`` (visible images) through ``model.image``;
    captions of ``split.query`` as queries; ``split.train`` (at most settings.attack.max_pairs) feeds the attack."""
    device = model.logit_scale.device
    size = model.image.input_size
    texts, text_pids = text_queries(split.query, captions)
    train_records = subset(split.train, settings.attack.max_pairs, settings.seed)
    log(f"loading {len(split.gallery)} gallery and {len(train_records)} attack-training images at {size[0]}x{size[1]}")
    gallery = load_images([r.path for r in split.gallery], size).to(device)
    train = load_images([r.path for r in train_records], size).to(device)
    text_features = model.encode_text(texts)
    result = GalleryResult("text-to-image", dataset, settings, {
        "text_queries": len(texts), "query_ids": len(set(text_pids)), "gallery": len(split.gallery),
        "gallery_ids": len({r.pid for r in split.gallery if r.pid > 0}), "attack_train": len(train_records),
        "input_size": list(size)})
    result.chance[DIRECTION] = chance_levels(text_pids, None, [r.pid for r in split.gallery],
                                             [r.camid for r in split.gallery])
    result.notes = [f"Example queries: \"{texts[0]}\" / \"{texts[1]}\" (identity {text_pids[0]})."]

    def score(gallery_features: torch.Tensor) -> dict:
        return {DIRECTION: text_to_image_scores(text_features, text_pids, gallery_features, split.gallery)}

    return run_protected_gallery(result, model.image, gallery, train, score, config, log=log)
