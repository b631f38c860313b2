"""Protector.protect_all, the one batch driver: the same bits as protecting batch by batch, a start other than
the images, another loop per batch, and progress in images."""
import dataclasses

import pytest
import torch

import pixelfade_fast as pf
from pixelfade_fast.engine import Protector
from pixelfade_fast.reference import derive_keys
from engine_models import SmallReIDNet, smooth_images

CONFIG = pf.FadeConfig(steps=8, init_steps=2, final_steps=2, finish_steps=6, quantize=True)


@pytest.fixture(scope="module")
def model():
    return SmallReIDNet()


@pytest.fixture(scope="module")
def images():
    return smooth_images(7, seed=4)


def test_equals_protecting_batch_by_batch(model, images):
    keys = derive_keys(3, range(7))
    with Protector(model, CONFIG, backend="reference") as protector:
        whole = protector.protect_all(images, keys, 3)
        parts = [protector.protect_batch(images[first:first + 3], keys[first:first + 3]) for first in (0, 3, 6)]
    assert torch.equal(whole.pixels, torch.cat([p.pixels for p in parts]))
    assert torch.equal(whole.final_loss, torch.cat([p.final_loss for p in parts]))
    assert torch.equal(whole.epsilon, torch.cat([p.epsilon for p in parts]))
    result = pf.protect(model, images, CONFIG, uids=range(7), seed=3, backend="reference", batch_size=3,
                        progress=False)
    assert torch.equal(result.images, whole.pixels) and torch.equal(result.met_epsilon, whole.met_epsilon)


def test_a_start_other_than_the_images_keeps_their_targets_and_bounds(model, images):
    config = dataclasses.replace(CONFIG, clamp="data")  # bounds from the images, not from the start
    start = smooth_images(7, seed=9)
    keys = derive_keys(0, range(7))
    with Protector(model, config, backend="reference") as protector:
        got = protector.protect_all(images, keys, 4, start=start)
        for first in (0, 4):
            rows = slice(first, first + 4)
            setup = dataclasses.replace(protector.setup(images[rows], keys[rows]),
                                        x=protector.space.normalise(start[rows]))
            xp, final = protector.run(setup)
            assert torch.equal(got.pixels[rows], protector.space.to_pixels(xp))
            assert torch.equal(got.final_loss[rows], final)
        plain = protector.protect_all(images, keys, 4)
    assert not torch.equal(plain.pixels, got.pixels)


def test_another_loop_gets_every_batch_once_in_order(model, images):
    seen, epsilons = [], []

    def halve(rows, setup):
        seen.append(rows)
        epsilons.append(setup.epsilon)
        assert torch.equal(setup.pixels, images[rows])
        return setup.pixels / 2, torch.full((setup.pixels.shape[0],), float(rows.start))

    progress = []
    with Protector(model, CONFIG, backend="reference") as protector:
        result = protector.protect_all(images, derive_keys(1, range(7)), 2, run_batch=halve,
                                       progress=lambda done, total: progress.append((done, total)))
    assert seen == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    assert torch.equal(result.pixels, images / 2)
    assert result.final_loss.tolist() == [0, 0, 2, 2, 4, 4, 6]
    assert progress == [(2, 7), (4, 7), (6, 7), (7, 7)]
    assert torch.equal(result.epsilon, torch.cat(epsilons))


def test_progress_counts_images_through_the_steps(model, images):
    progress = []
    with Protector(model, CONFIG, backend="reference") as protector:
        protector.protect_all(images[:5], derive_keys(1, range(5)), 2,
                              progress=lambda done, total: progress.append((done, total)))
    done = [d for d, _ in progress]
    assert all(total == 5 for _, total in progress)
    assert done == sorted(done) and done[-1] == 5 and any(d != int(d) for d in done)
    assert len(done) == 3 * CONFIG.total_steps  # one call per step of each of the three batches
