"""Visible-infrared Re-ID over a protected gallery (paper Sec. 4.5, Table 6), with a cross-modality model.

The gallery's infrared images (the paper's setting: an original RGB query searches a protected infrared gallery)
and its visible images (the way back: an original infrared query searches a protected visible gallery) are
protected through the one cross-modality model. Protocol: every match is across modalities, hence across
cameras, so the Market-1501 protocol removes nothing (junk aside); rank-1/5/10, mAP, mINP per direction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..config import FadeConfig
from ..data.images import load_images
from ..data.records import Record, ReIDSplit
from ..engine import extract_features
from ..feature_model import model_device
from .protected_gallery import GalleryResult, run_protected_gallery
from .reid_metrics import chance_levels, evaluate_reid
from .suite import SuiteSettings, subset

VISIBLE_TO_INFRARED, INFRARED_TO_VISIBLE = "visible->infrared", "infrared->visible"


def by_modality(records: Sequence[Record], infrared_camids: Iterable[int]) -> tuple[list[Record], list[Record]]:
    """(visible, infrared) records: infrared when the camera is one of ``infrared_camids``."""
    infrared = set(infrared_camids)
    return [r for r in records if r.camid not in infrared], [r for r in records if r.camid in infrared]


def _ids(records: Sequence[Record]) -> tuple[list[int], list[int]]:
    return [r.pid for r in records], [r.camid for r in records]


def cross_modality_scores(model: nn.Module, split: ReIDSplit, infrared_camids: Iterable[int]) -> dict:
    """Both directions on original images (the test scores of the cross-modality model's card)."""
    size = tuple(model.input_size)
    q_vis, q_ir = by_modality(split.query, infrared_camids)
    g_vis, g_ir = by_modality(split.gallery, infrared_camids)
    features = {name: extract_features(model, load_images([r.path for r in records], size))
                for name, records in (("q_vis", q_vis), ("q_ir", q_ir), ("g_vis", g_vis), ("g_ir", g_ir))}
    return {VISIBLE_TO_INFRARED: evaluate_reid(features["q_vis"], *_ids(q_vis), features["g_ir"], *_ids(g_ir)),
            INFRARED_TO_VISIBLE: evaluate_reid(features["q_ir"], *_ids(q_ir), features["g_vis"], *_ids(g_vis))}


def run_visible_infrared(model: nn.Module, split: ReIDSplit, infrared_camids: Iterable[int],
                         settings: SuiteSettings, *, dataset: str = "", config: FadeConfig | None = None,
                         log: Callable[[str], None] = print) -> GalleryResult:
    """Every method of ``settings`` protecting the gallery (infrared and visible images) through ``model``;
    original queries of the other modality; ``split.train`` (both modalities) feeds the attack."""
    infrared_camids = set(infrared_camids)
    device = model_device(model)
    size = tuple(model.input_size)
    q_vis, q_ir = by_modality(split.query, infrared_camids)
    g_vis, g_ir = by_modality(split.gallery, infrared_camids)
    for name, records in (("visible query", q_vis), ("infrared query", q_ir), ("visible gallery", g_vis),
                          ("infrared gallery", g_ir)):
        if not records:
            raise ValueError(f"the split has no {name} images (infrared cameras {sorted(infrared_camids)})")
    gallery_records = g_ir + g_vis  # infrared first: the figure shows the first gallery images
    train_records = subset(split.train, settings.attack.max_pairs, settings.seed)
    log(f"loading {len(gallery_records)} gallery and {len(train_records)} attack-training images at "
        f"{size[0]}x{size[1]}")
    gallery = load_images([r.path for r in gallery_records], size).to(device)
    train = load_images([r.path for r in train_records], size).to(device)
    q_vis_features = extract_features(model, load_images([r.path for r in q_vis], size).to(device))
    q_ir_features = extract_features(model, load_images([r.path for r in q_ir], size).to(device))
    ir_index, vis_index = np.arange(len(g_ir)), np.arange(len(g_ir), len(gallery_records))
    result = GalleryResult("visible-infrared", dataset, settings, {
        "visible_query": len(q_vis), "infrared_query": len(q_ir), "infrared_gallery": len(g_ir),
        "visible_gallery": len(g_vis), "query_ids": len({r.pid for r in split.query}),
        "attack_train": len(train_records), "input_size": list(size)})
    result.chance = {VISIBLE_TO_INFRARED: chance_levels(*_ids(q_vis), *_ids(g_ir)),
                     INFRARED_TO_VISIBLE: chance_levels(*_ids(q_ir), *_ids(g_vis))}

    def score(gallery_features: torch.Tensor) -> dict:
        return {VISIBLE_TO_INFRARED: evaluate_reid(q_vis_features, *_ids(q_vis), gallery_features[ir_index],
                                                   *_ids(g_ir)),
                INFRARED_TO_VISIBLE: evaluate_reid(q_ir_features, *_ids(q_ir), gallery_features[vis_index],
                                                   *_ids(g_vis))}

    return run_protected_gallery(result, model, gallery, train, score, config,
                                 groups={"infrared": ir_index, "visible": vis_index}, log=log)
