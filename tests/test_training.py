"""Re-ID training: PK sampler invariants, losses against naive implementations, augmentations, LR schedule,
and tiny end-to-end training runs (train_reid and main_train) on a small SynthPed set."""
import json
import math
from operator import attrgetter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelfade_fast.data import generate_synthped
from pixelfade_fast.models import build_model
from pixelfade_fast.training import (PKSampler, batch_hard_triplet, learning_rate, main_train,
                                     smoothed_cross_entropy, train_reid)
from pixelfade_fast.training.augment import random_erasing, random_flip, random_pad_crop
from pixelfade_fast.training.heads import training_outputs
from pixelfade_fast.training.trainer import TrainSettings

TINY = {"input_size": (32, 16), "p": 3, "k": 4, "lr": 3e-3, "warmup_epochs": 0, "seed": 5,
        "eval_batch_size": 64}


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    """6 train identities x 2 cameras x 4 crops, 4 test identities, rendered at 32x16."""
    root = tmp_path_factory.mktemp("synthped")
    return generate_synthped(root, num_ids_train=6, num_ids_test=4, images_per_id_per_cam=4, num_cams=2,
                             size=(32, 16), seed=11)


# ---- PK sampler ----------------------------------------------------------------------------------------

def _random_labels(rng, num_ids=9, k=4):
    counts = rng.integers(1, 3 * k, size=num_ids)
    counts[:2] = (1, k - 1)  # at least two identities with fewer than K images
    labels = np.repeat(rng.permutation(1000)[:num_ids], counts)
    return rng.permutation(labels), counts


def test_pk_batches_hold_p_identities_of_k_images():
    rng = np.random.default_rng(0)
    labels, _ = _random_labels(rng)
    p, k = 3, 4
    sampler = PKSampler(labels, p, k, seed=1)
    for epoch in range(3):
        batches = sampler.epoch_batches(epoch)
        assert batches
        for batch in batches:
            assert len(batch) == p * k
            groups = [batch[i * k:(i + 1) * k] for i in range(p)]
            ids = [set(labels[g]) for g in groups]
            assert all(len(s) == 1 for s in ids), "each group of K must be one identity"
            assert len({next(iter(s)) for s in ids}) == p, "the P identities of a batch must differ"
            for group in groups:
                own = np.flatnonzero(labels == labels[group[0]])
                if len(own) >= k:
                    assert len(set(group)) == k, "an identity with >= K images repeats none in its group"
                else:
                    assert set(group) <= set(own.tolist())  # drawn with replacement from its own images


def test_pk_sampler_repeats_a_single_image_and_uses_others_once():
    labels = np.array([7] + [8] * 8 + [9] * 8 + [10] * 8 + [11] * 8)  # 1 image, then 2 groups of K=4 each
    for epoch in range(4):
        batches = PKSampler(labels, 2, 4, seed=3).epoch_batches(epoch)
        groups = [batch[i:i + 4] for batch in batches for i in (0, 4)]
        assert [g for g in groups if labels[g[0]] == 7] in ([], [[0, 0, 0, 0]])
        others = [i for g in groups if labels[g[0]] != 7 for i in g]
        assert len(others) == len(set(others)), "with counts a multiple of K no image repeats in an epoch"
        # 9 groups of which no identity holds more than 2: batches of 2 identities use 8 of them.
        assert len(batches) == 4


def test_pk_sampler_is_deterministic_per_seed_and_epoch():
    labels, _ = _random_labels(np.random.default_rng(4))
    first = PKSampler(labels, 3, 4, seed=9)
    again = PKSampler(labels, 3, 4, seed=9)
    assert first.epoch_batches(2) == again.epoch_batches(2)
    assert first.epoch_batches(2) != first.epoch_batches(3)
    assert first.epoch_batches(2) != PKSampler(labels, 3, 4, seed=10).epoch_batches(2)


@pytest.mark.parametrize("kwargs, message", [({"p": 1, "k": 4}, "p must be"), ({"p": 2, "k": 1}, "k must be"),
                                             ({"p": 5, "k": 2}, "only 3 identities")])
def test_pk_sampler_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PKSampler([1, 1, 2, 2, 3, 3], **kwargs)


# ---- losses --------------------------------------------------------------------------------------------

def _naive_batch_hard(features, labels, margin):
    total = 0.0
    for i in range(len(labels)):
        positives = [torch.linalg.vector_norm(features[i] - features[j])
                     for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        negatives = [torch.linalg.vector_norm(features[i] - features[j])
                     for j in range(len(labels)) if labels[j] != labels[i]]
        total = total + torch.relu(max(positives) - min(negatives) + margin)
    return total / len(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_triplet_matches_a_loop_in_value_and_gradient(seed):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randperm(12, generator=gen) % 4  # 4 identities x 3 images, shuffled
    features = torch.randn(12, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    margin = 0.5 + seed
    ours = batch_hard_triplet(features, labels, margin)
    naive = _naive_batch_hard(features, labels.tolist(), margin)
    assert ours.item() > 0
    torch.testing.assert_close(ours, naive, rtol=1e-10, atol=1e-10)
    (grad_ours,) = torch.autograd.grad(ours, features)
    (grad_naive,) = torch.autograd.grad(naive, features)
    torch.testing.assert_close(grad_ours, grad_naive, rtol=1e-8, atol=1e-10)


def test_batch_hard_triplet_is_zero_for_separated_clusters():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    features = centres[labels] + 0.01 * torch.randn(4, 2)
    assert batch_hard_triplet(features, labels, 0.3).item() == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
def test_smoothed_cross_entropy_matches_torch_and_the_formula(smoothing):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 6, (10,), generator=gen)
    ours = smoothed_cross_entropy(logits, labels, smoothing)
    torch.testing.assert_close(ours, F.cross_entropy(logits, labels, label_smoothing=smoothing))
    probs = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    target = np.full((10, 6), smoothing / 6) + (1 - smoothing) * np.eye(6)[labels.numpy()]
    assert math.isclose(ours.item(), float(-(target * np.log(probs)).sum(1).mean()), rel_tol=1e-12)


def test_losses_reject_wrong_arguments():
    with pytest.raises(ValueError, match="smoothing"):
        smoothed_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="labels"):
        batch_hard_triplet(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


# ---- augmentations and learning rate -------------------------------------------------------------------

def test_flip_and_pad_crop_give_mirrors_and_translations():
    x = torch.randn(6, 3, 10, 7)
    flipped = random_flip(x, torch.Generator().manual_seed(0))
    mirrored = [torch.equal(f, im.flip(2)) for f, im in zip(flipped, x)]
    assert all(m or torch.equal(f, im) for m, f, im in zip(mirrored, flipped, x)) and any(mirrored)
    pad = 2
    cropped = random_pad_crop(x, pad, torch.Generator().manual_seed(1))
    assert cropped.shape == x.shape and cropped.is_contiguous()
    padded = F.pad(x, (pad,) * 4)
    offsets = []
    for out, image in zip(cropped, padded):
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(out, image[:, dy:dy + 10, dx:dx + 7])]
        assert found, "each output must be a crop of its zero-padded input"
        offsets.append(found[0])
    assert len(set(offsets)) > 1


def test_random_erasing_zeroes_one_rectangle():
    x = torch.rand(20, 3, 16, 8) + 1.0  # no zeros before erasing
    out = random_erasing(x, torch.Generator().manual_seed(2), p=0.5)
    erased = 0
    for before, after in zip(x, out):
        changed = (after != before).any(0)
        assert torch.all(after[:, changed] == 0) and torch.equal(after[:, ~changed], before[:, ~changed])
        if changed.any():
            erased += 1
            rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
            box = changed[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert box.all(), "the erased pixels must form one full rectangle"
    assert 0 < erased < 20


def test_learning_rate_warmup_then_cosine_or_step():
    lrs = [learning_rate(e, 1.0, 10, warmup_epochs=4) for e in range(10)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    steps = [learning_rate(e, 1.0, 10, schedule="step", milestones=(3, 6)) for e in range(10)]
    assert steps == pytest.approx([1.0] * 3 + [0.1] * 3 + [0.01] * 4)
    with pytest.raises(ValueError, match="schedule"):
        learning_rate(0, 1.0, 10, schedule="linear")


# ---- training heads and settings -----------------------------------------------------------------------

@pytest.mark.parametrize("name, layer, head", [("osnet_x0_25", "pool", "fc"), ("tiny_cnn", "pool", "fc"),
                                              ("osnet_ain_x0_25", "pool", "fc"),
                                              ("fastreid_bot_r50", "pool", "heads.bottleneck")])
def test_training_outputs_put_the_triplet_on_the_pooled_feature(name, layer, head):
    backbone = build_model(name, num_classes=5, seed=1).backbone.train(False)
    x = torch.randn(4, 3, 64, 32)
    features, logits = training_outputs(backbone, x)
    pooled = backbone.features(x, layer)
    torch.testing.assert_close(features, pooled)
    torch.testing.assert_close(logits, backbone.classifier(attrgetter(head)(backbone)(pooled)))
    with pytest.raises(ValueError, match="num_classes > 0"):
        training_outputs(build_model(name).backbone, x)


@pytest.mark.parametrize("kwargs, message", [({"input_size": (8, 8)}, "input_size"),
                                             ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
                                             ({"schedule": "linear"}, "schedule"), ({"lr": 0.0}, "lr must be")])
def test_train_settings_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**kwargs)


# ---- end-to-end ----------------------------------------------------------------------------------------

def test_tiny_training_lowers_the_loss_is_deterministic_and_saves(tiny_split, tmp_path):
    lines = []
    out = tmp_path / "tiny.safetensors"
    model, metrics = train_reid("tiny_cnn", tiny_split, epochs=8, progress=lines.append, checkpoint=out, **TINY)
    history = metrics["history"]
    assert len(history) == 8 and sum(line.startswith("epoch ") for line in lines) == 8
    late = history[-2:]  # two epochs averaged: a single small epoch is noisy
    assert sum(h["loss"] for h in late) / 2 < 0.8 * history[0]["loss"]
    assert sum(h["accuracy"] for h in late) / 2 > history[0]["accuracy"]
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_valid_queries"] == len(tiny_split.query)
    assert model.backbone.classifier is None and model.input_size == (32, 16)

    again, metrics_again = train_reid("tiny_cnn", tiny_split, epochs=8, progress=False, **TINY)
    assert [h["loss"] for h in history] == [h["loss"] for h in metrics_again["history"]]
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs between two runs with the same seed"

    reloaded = build_model("tiny_cnn", pretrained_path=out, input_size=(32, 16))
    x = torch.randn(3, 3, 32, 16)
    torch.testing.assert_close(reloaded(x), model(x), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*.tmp")), "the temporary checkpoint file must be renamed away"


def test_main_train_writes_weights_and_prints_scores(tiny_split, tmp_path, capsys):
    root = tiny_split.train[0].path.rsplit("/bounding_box_train/", 1)[0]
    out = tmp_path / "cli.safetensors"
    status = main_train(["--data", "synthped", "--root", root, "--model", "tiny_cnn", "--input-size", "32", "16",
                         "--epochs", "2", "--p", "3", "--k", "2", "--warmup-epochs", "1", "--out", str(out),
                         "--quiet"])
    assert status == 0 and out.is_file()
    printed = json.loads(capsys.readouterr().out)
    assert 0.0 <= printed["rank1"] <= 1.0 and printed["num_train_ids"] == 6
    assert main_train(["--data", "market", "--root", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
