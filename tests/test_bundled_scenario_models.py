"""The bundled dual encoder and cross-modality model load and score far above chance on identities they never
saw (rendered in memory from their SynthPed world), and the README's "any feature extractor" example runs."""
import numpy as np
import pytest
import torch

from pixelfade_fast import FadeConfig, protect
from pixelfade_fast.data import render_synthped_crop, synthped_captions
from pixelfade_fast.engine import extract_features
from pixelfade_fast.evaluation.reid_metrics import chance_levels, evaluate_reid
from pixelfade_fast.cli.scenario_command import BUNDLED_CROSS_MODALITY, BUNDLED_DUAL_ENCODER
from pixelfade_fast.models import build_model
from pixelfade_fast.models.dual_encoder import load_dual_encoder
from pixelfade_fast.training.scenarios import INFRARED_CAMIDS, SCENARIO_SYNTHPED, VISIBLE_CAMIDS

SEED, SIZE = SCENARIO_SYNTHPED["seed"], SCENARIO_SYNTHPED["size"]
PIDS = range(301, 341)  # 40 identities beyond every training and test split of the models and reports
MIN_CHANCE_MULTIPLE = 3.0  # rank-1 and mAP at least this many times a random ranking's


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def _pixels(crops) -> torch.Tensor:
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0


def _gallery(cams, infrared: bool):
    crops, pids, camids = [], [], []
    for pid in PIDS:
        for cam in cams:
            crops.append(render_synthped_crop(SEED, pid, cam, 0, SIZE, infrared=infrared))
            pids.append(pid)
            camids.append(cam)
    return _pixels(crops), pids, camids


def test_bundled_dual_encoder_retrieves_by_text_far_above_chance():
    model = load_dual_encoder(BUNDLED_DUAL_ENCODER)
    gallery, g_pids, g_camids = _gallery(VISIBLE_CAMIDS, infrared=False)
    texts, t_pids = [], []
    for pid in PIDS:  # the captions of a shot that is not in the gallery (a query shot)
        captions = synthped_captions(SEED, pid, 0, 0, 2, query=True)
        texts += captions
        t_pids += [pid] * len(captions)
    scores = evaluate_reid(model.encode_text(texts), t_pids, None, extract_features(model.image, gallery), g_pids,
                           g_camids)
    chance = chance_levels(t_pids, None, g_pids, g_camids)
    for key in ("rank1", "mAP"):
        assert scores[key] > MIN_CHANCE_MULTIPLE * chance[key], (key, scores, chance)


def test_bundled_cross_modality_model_matches_visible_to_infrared_far_above_chance():
    model = build_model("osnet_x0_25", pretrained_path=BUNDLED_CROSS_MODALITY, input_size=SIZE)
    gallery, g_pids, g_camids = _gallery(INFRARED_CAMIDS, infrared=True)
    query, q_pids, q_camids = _gallery(VISIBLE_CAMIDS, infrared=False)
    scores = evaluate_reid(extract_features(model, query), q_pids, q_camids, extract_features(model, gallery), g_pids,
                           g_camids)
    chance = chance_levels(q_pids, q_camids, g_pids, g_camids)
    for key in ("rank1", "mAP"):
        assert scores[key] > MIN_CHANCE_MULTIPLE * chance[key], (key, scores, chance)


def test_readme_any_feature_extractor_example():
    dual = load_dual_encoder(BUNDLED_DUAL_ENCODER)
    gallery = _pixels([render_synthped_crop(SEED, PIDS[0], 0, 0, SIZE)])
    result = protect(dual.image, gallery, FadeConfig(), seed=1, progress=False)  # the image branch only
    assert result.images.shape == gallery.shape and bool(result.met_epsilon.all())
    text = dual.encode_text(["A person wearing a navy jacket and black trousers."])
    similarity = torch.nn.functional.cosine_similarity(text, extract_features(dual.image, result.images))
    assert similarity.shape == (1,)
