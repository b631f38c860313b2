"""Scenario models: tokenizer, contrastive loss (hand-computed), text retrieval metrics (hand case), chance
levels, the FeatureExtractor adapter with protect, the dual encoder's file format and a tiny training run."""
import json
import math

import pytest
import torch
from torch import nn

from pixelfade_fast import FadeConfig, protect
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.data.captions import caption_vocabulary, read_captions, tokenize_words
from pixelfade_fast.engine import extract_features, per_image_loss
from pixelfade_fast.evaluation.reid_metrics import chance_levels, evaluate_reid
from pixelfade_fast.evaluation.text_to_image import evaluate_dual_encoder
from pixelfade_fast.models import FeatureExtractor, save_safetensors, build_model
from pixelfade_fast.models.dual_encoder import (DualEncoder, DualEncoderSpec, dual_encoder_metadata,
                                                load_dual_encoder, save_dual_encoder)
from pixelfade_fast.models.text_encoder import WordTokenizer
from pixelfade_fast.training.contrastive import symmetric_info_nce, train_dual_encoder

TINY_SPEC = DualEncoderSpec(image_model="tiny_cnn", input_size=(32, 16), embed_dim=16, text_width=16, text_layers=1,
                            text_heads=2, max_length=32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


# ---- tokenizer ------------------------------------------------------------------------------------------

def test_tokenizer_round_trip_unknown_words_padding_and_truncation():
    tokenizer = WordTokenizer(caption_vocabulary(), max_length=6)
    text = "A person in a red T-shirt."
    ids = tokenizer.encode(text)
    assert tokenize_words(text) == ["a", "person", "in", "a", "red", "t", "shirt"]
    assert tokenizer.decode(ids) == "a person in a red t"  # max_length 6: the 7th word is cut off
    assert 1 not in ids and len(ids) == 6  # every word known
    assert tokenizer.encode("a zebra") == [tokenizer.ids["a"], 1]  # unknown word -> id 1
    assert tokenizer.encode("") == [1] and tokenizer.decode([0, 0]) == ""
    batch = tokenizer(["red", "a red coat"])
    assert batch.tolist() == [[tokenizer.ids["red"], 0, 0], [tokenizer.ids[w] for w in ("a", "red", "coat")]]
    assert len(tokenizer) == len(caption_vocabulary()) + 2
    with pytest.raises(ValueError, match="distinct"):
        WordTokenizer(["red", "red"])


# ---- contrastive loss -----------------------------------------------------------------------------------

def test_info_nce_distinct_labels_is_clip_loss_by_hand():
    eye = torch.eye(2)
    loss = symmetric_info_nce(eye, eye * 3.0, torch.tensor([4, 7]), torch.tensor(math.log(2.0)))
    # logits = 2·I: each row's cross-entropy is log(1 + e^-2), the same both ways.
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_info_nce_same_identity_pairs_are_positives_by_hand():
    e0, e1 = [1.0, 0.0], [0.0, 1.0]
    image, text = torch.tensor([e0, e0, e1]), torch.tensor([e0, e1, e1])
    loss = symmetric_info_nce(image, text, torch.tensor([0, 0, 1]), torch.tensor(0.0))
    # logits (scale 1) image x text: [[1,0,0],[1,0,0],[0,1,1]]; targets rows 0,1: [1/2, 1/2, 0], row 2: [0, 0, 1].
    l_e2, l_2e1 = math.log(math.e + 2), math.log(2 * math.e + 1)
    image_to_text = (2 * (l_e2 - 0.5) + (math.log(1 + 2 * math.e) - 1)) / 3
    text_to_image = ((l_2e1 - 1) + l_e2 + (l_e2 - 1)) / 3  # text rows: [1,1,0], [0,0,1], [0,0,1]
    assert float(loss) == pytest.approx(0.5 * (image_to_text + text_to_image), rel=1e-6)
    with pytest.raises(ValueError, match="expected image and text"):
        symmetric_info_nce(image, text[:2], torch.tensor([0, 0, 1]), torch.tensor(0.0))


# ---- metrics --------------------------------------------------------------------------------------------

def _on_circle(angles):
    angles = torch.tensor(angles, dtype=torch.float64)
    return torch.stack([angles.cos(), angles.sin()], 1)


def test_text_queries_have_no_camera_so_nothing_is_removed():
    query = _on_circle([0.0])
    gallery = _on_circle([0.2, 0.1, 0.4, 0.3])  # ranked g1 (pid 2), g0 (pid 1), g3 (pid 3), g2 (pid 1)
    g_pids, g_camids = [1, 2, 1, 3], [0, 0, 1, 1]
    text = evaluate_reid(query, [1], None, gallery, g_pids, g_camids)
    assert (text["rank1"], text["rank5"]) == (0.0, 1.0)
    assert text["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2) and text["mINP"] == pytest.approx(2 / 4)
    image = evaluate_reid(query, [1], [0], gallery, g_pids, g_camids)  # camera 0: g0 is removed
    assert image["mAP"] == pytest.approx(1 / 3) and image["mINP"] == pytest.approx(1 / 3)


def test_chance_levels_match_a_random_ranking():
    g_pids = list(range(10))  # one match per query among 10
    q_pids = [i % 10 for i in range(50)]
    chance = chance_levels(q_pids, None, g_pids, [0] * 10, draws=40)
    assert chance["rank1"] == pytest.approx(0.1, abs=0.03)
    assert chance["rank5"] == pytest.approx(0.5, abs=0.05)
    assert chance["mAP"] == pytest.approx(sum(1 / r for r in range(1, 11)) / 10, abs=0.03)  # E[1/rank]


# ---- any feature extractor -------------------------------------------------------------------------------

def test_feature_extractor_defines_the_input_space_for_protect():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 8, 8))
    model = FeatureExtractor(net, (16, 8), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    images = torch.rand(3, 3, 16, 8)
    with torch.no_grad():
        expected = net((images - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
                       / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
    assert torch.allclose(extract_features(model, images), expected, atol=1e-6)
    result = protect(model, images, FadeConfig(), seed=1, progress=False)
    assert result.images.shape == images.shape and 0 <= float(result.images.min()) <= float(result.images.max()) <= 1
    noise_loss = per_image_loss(extract_features(model, torch.rand(3, 3, 16, 8)), expected)
    assert bool((result.final_loss < 0.1 * noise_loss).all())  # the features were kept, unlike random noise's
    assert (result.images - images).abs().mean() > 0.1  # and the pixels were not
    with pytest.raises(ValueError, match="16x8"):
        protect(model, torch.rand(1, 3, 32, 16), progress=False)


# ---- dual encoder ---------------------------------------------------------------------------------------

def test_dual_encoder_file_round_trip(tmp_path):
    model = DualEncoder(TINY_SPEC, caption_vocabulary(), seed=3).eval()
    path = tmp_path / "dual.safetensors"
    save_dual_encoder(model, path, {"note": "x"})
    loaded = load_dual_encoder(path)
    texts = ["A person in a red coat.", "the walker wears black shoes", "zebra"]
    assert torch.equal(loaded.encode_text(texts), model.encode_text(texts))
    # padding does not change a text's embedding (up to float rounding of the longer sequence)
    assert torch.allclose(loaded.encode_text(texts[1:2]), model.encode_text(texts)[1:2], atol=1e-6)
    images = torch.rand(2, 3, 32, 16)
    assert torch.equal(extract_features(loaded.image, images), extract_features(model.image, images))
    assert loaded.spec == TINY_SPEC and dual_encoder_metadata(path)["note"] == "x"
    plain = tmp_path / "plain.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=0), plain)
    with pytest.raises(ValueError, match="not a dual-encoder file"):
        load_dual_encoder(plain)


def test_tiny_dual_encoder_training_run(tmp_path):
    root = tmp_path / "data"
    split = generate_synthped(root, num_ids_train=4, num_ids_test=3, images_per_id_per_cam=2, num_cams=2,
                              size=(32, 16), seed=2, captions_per_image=2)
    captions = {k: v for f in ("bounding_box_train", "query", "bounding_box_test")
                for k, v in read_captions(root / f).items()}
    lines = []
    path = tmp_path / "dual.safetensors"
    model, metrics = train_dual_encoder(
        split, captions, caption_vocabulary(), spec=TINY_SPEC, progress=lines.append, checkpoint=path,
        evaluate=lambda m: evaluate_dual_encoder(m, split.query, split.gallery, captions),
        epochs=2, p=2, k=2, warmup_epochs=0, seed=1)
    assert len(metrics["history"]) == 2 and metrics["num_train_ids"] == 4
    assert metrics["num_queries"] == 2 * len(split.query) and 0 < metrics["mAP"] <= 1
    assert any(line.startswith("epoch 2/2") for line in lines)
    loaded = load_dual_encoder(path)
    assert torch.equal(loaded.encode_text(["a red coat"]), model.encode_text(["a red coat"]))
    assert json.loads(dual_encoder_metadata(path)["train_metrics"])["mAP"] == pytest.approx(metrics["mAP"])
    again, _ = train_dual_encoder(split, captions, caption_vocabulary(), spec=TINY_SPEC, progress=False, epochs=2,
                                  p=2, k=2, warmup_epochs=0, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="no captions"):
        train_dual_encoder(split, {}, caption_vocabulary(), spec=TINY_SPEC, progress=False, epochs=1, p=2, k=2,
                           warmup_epochs=0)
