"""The attacker registry and the reviewer's attackers (issue 25): the authors' attack and metric, the
identity-aware GAN, the feature decoder; each trained for seconds on 32x16 images."""
import dataclasses

import pytest
import torch

from pixelfade_fast.engine import extract_features, frozen
from pixelfade_fast.evaluation import attackers as registry
from pixelfade_fast.evaluation.adversarial_attack import AdversarialTerms, identity_loss
from pixelfade_fast.evaluation.attack import prior_floor, score_images, train_recovery
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.attacker_sizes import ATTACKER_SIZE_PRESETS
from pixelfade_fast.evaluation.authors_attack import authors_metric, minmax_rescaled, recover, train_generator
from pixelfade_fast.evaluation.feature_decoder import decode, train_decoder
from pixelfade_fast.evaluation.pix2pix import PatchDiscriminator, UnetGenerator
from pixelfade_fast.evaluation.privacy import psnr
from pixelfade_fast.evaluation.unet import RecoveryUNet
from pixelfade_fast.models import build_model
from engine_models import smooth_images

TINY = ATTACKER_SIZE_PRESETS["tiny"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def split():
    images = smooth_images(80, 32, 16, seed=1)
    return images[:64], images[64:]


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_cnn", seed=0, input_size=(32, 16))


def test_the_registry_holds_the_defaults_the_secret_attacker_and_the_reviewers_attackers():
    assert registry.default_attackers() == ("unet", "protected", "mean")
    assert registry.optional_attackers() == ("authors", "adversarial", "feature_decoder", "adversarial_other",
                                             "feature_decoder_other")
    assert [n for n, a in registry.ATTACKERS.items() if a.needs_secret] == ["known_noise"]
    assert {n: a.needs_model for n, a in registry.ATTACKERS.items() if a.needs_model} == {
        "adversarial": "authorised", "feature_decoder": "authorised", "adversarial_other": "other",
        "feature_decoder_other": "other"}
    assert [n for n, a in registry.ATTACKERS.items() if a.utility_floor] == ["feature_decoder",
                                                                             "feature_decoder_other"]
    with pytest.raises(ValueError, match=r"unknown attackers \['unet', 'nope'\]"):
        registry.check_attackers(["unet", "nope"])  # a default one is not "added"
    with pytest.raises(ValueError, match="already registered"):
        registry.register_attacker(registry.ATTACKERS["authors"])
    with pytest.raises(ValueError, match="needs_model must be one of"):
        registry.register_attacker(registry.Attacker("x", lambda job: {}, "x", needs_model="stolen"))


def test_the_authors_metric_is_perfect_on_identical_images_and_blind_to_affine_rescaling(split):
    _, test = split
    same = authors_metric(test, test.clone())
    assert same["psnr"] == 100.0 and same["ssim"] == pytest.approx(1.0, abs=1e-9)
    test = test.double()  # the affine maps below are exact enough in float64
    other = torch.rand(test.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    theirs = authors_metric(other, test)
    rescaled = authors_metric(other * 0.3 + 0.6, test * 2.0 - 0.5)
    assert rescaled["psnr"] == pytest.approx(theirs["psnr"], abs=1e-9)
    assert rescaled["ssim"] == pytest.approx(theirs["ssim"], abs=1e-9)
    # our metric is not: a dimmed recovery scores lower on the pixels themselves
    assert float(psnr(test * 0.5, test).mean()) < 30.0 and authors_metric(test * 0.5, test)["psnr"] == 100.0
    # per batch: the rescaling uses the batch's extremes, so batches of one image rescale each image alone
    one = authors_metric(other, test, batch_size=1)
    expected = torch.stack([psnr(minmax_rescaled(other[i:i + 1].double()), minmax_rescaled(test[i:i + 1].double()))
                            for i in range(test.shape[0])]).mean()
    assert one["psnr"] == pytest.approx(float(expected), abs=1e-9)
    assert minmax_rescaled(torch.full((2, 3, 4, 4), 0.5)).abs().max() == 0  # a constant batch, no division by 0


def test_the_authors_generator_is_pix2pix_unet_128():
    net = UnetGenerator()  # 7 down-samplings, 64 filters: pix2pix's unet_128 (41.8 M weights with BatchNorm)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(convs) == 7 and convs[0].out_channels == 64 and max(c.out_channels for c in convs) == 512
    assert sum(p.numel() for p in net.parameters()) == 41_828_995
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    small = UnetGenerator(downsamplings=4, filters=4).eval()
    x = torch.rand(3, 3, 30, 14)  # not a multiple of 16: padded and cropped back
    out = small(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="downsamplings must be an integer >= 2"):
        UnetGenerator(downsamplings=1)
    assert PatchDiscriminator(filters=4, layers=1)(x, out).shape[:2] == (3, 1)


def test_the_authors_attack_recovers_an_identity_protection_and_not_noise(split):
    train, test = split
    size = TINY.authors
    known = score_images(recover(train_generator(train, train, size), test), test)
    generator = torch.Generator().manual_seed(9)
    noise = train_generator(torch.rand(train.shape, generator=generator), train, size)
    blind = score_images(recover(noise, torch.rand(test.shape, generator=generator)), test)
    assert known["psnr"] > blind["psnr"] + 3.0 and known["ssim"] > blind["ssim"] + 0.2, (known, blind)
    # deterministic on the CPU
    again = score_images(recover(train_generator(train, train, size), test), test)
    assert again["psnr"] == known["psnr"]
    with pytest.raises(ValueError, match="exactly one"):
        train_generator(None, train, size)


def test_the_gan_and_identity_terms_reach_the_generator_through_the_frozen_model_after_the_warmup(split, model):
    train, _ = split
    size = TINY.adversarial
    torch.manual_seed(0)
    generator = RecoveryUNet(width=4, depth=3)
    terms = AdversarialTerms(model, size, torch.device("cpu"))
    inputs, target = torch.rand(train[:4].shape), train[:4]
    recovered = generator(inputs)
    with frozen(model):
        parts = terms.terms(inputs, recovered, target)
        parts["identity"].backward(retain_graph=True)
        # identical features give no identity loss
        assert float(identity_loss(model, target, extract_features(model, target))) == pytest.approx(0.0, abs=1e-6)
        grads = [p.grad for p in generator.parameters() if p.grad is not None]
        assert len(grads) == len(list(generator.parameters())) and sum(float(g.abs().sum()) for g in grads) > 0
        assert all(p.grad is None for p in model.parameters())
        assert float(parts["identity"].detach()) > 0.01 and float(parts["gan"].detach()) > 0
        # during the warm-up: no term, but the discriminator trains
        before = [p.detach().clone() for p in terms.discriminator.parameters()]
        total = 10
        warm = terms(int(size.warmup * total) - 1, total, inputs, recovered, target)
        assert float(warm) == 0.0 and not warm.requires_grad
        assert any(not torch.equal(b, p) for b, p in zip(before, terms.discriminator.parameters()))
        # after it: both terms with their weights, on the discriminator it has just trained
        after = terms(int(size.warmup * total), total, inputs, recovered, target)
        now = terms.terms(inputs, recovered, target)
    expected = size.adversarial_weight * now["gan"] + size.identity_weight * now["identity"]
    assert float(after.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    generator.zero_grad()
    after.backward()
    assert sum(float(p.grad.abs().sum()) for p in generator.parameters()) > 0


def test_the_adversarial_sizes_are_the_strong_u_net_with_a_small_late_gan_and_identity_term():
    cpu, full = ATTACKER_SIZE_PRESETS["cpu"].adversarial, ATTACKER_SIZE_PRESETS["full"].adversarial
    # the report's U-Net, its loss, schedule and augmentation, in batches of 8
    assert cpu.generator == attack_preset("strong", batch_size=8)
    assert (cpu.discriminator_filters, cpu.discriminator_layers) == (16, 3)
    assert full.generator == attack_preset("strong", width=64, epochs=100, crop=None)
    assert (full.discriminator_filters, full.discriminator_layers) == (64, 3)
    for size in (cpu, full):
        assert (size.adversarial_weight, size.identity_weight, size.warmup) == (0.002, 0.03, 0.5)


def test_train_recovery_adds_the_auxiliary_loss_at_every_step_and_nothing_else(split):
    train, _ = split
    settings = attack_preset("tiny", epochs=2, width=8, max_pairs=None)
    calls = []

    def nothing(step, total, inputs, recovered, target):
        calls.append((step, total, inputs.shape, recovered.shape, target.shape))
        return 0.0 * recovered.sum()

    plain = train_recovery(train, train, settings)
    same = train_recovery(train, train, settings, auxiliary=nothing)
    steps = 2 * train.shape[0] // settings.batch_size
    assert [c[:2] for c in calls] == [(step, steps) for step in range(steps)]
    assert all(c[2] == c[3] == c[4] == (settings.batch_size, 3, 32, 16) for c in calls)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), same.state_dict().values()))
    darker = train_recovery(train, train, settings, auxiliary=lambda step, total, i, recovered, t: recovered.mean())
    assert float(recover(darker, train).mean()) < float(recover(plain, train).mean()) - 0.05


def test_the_adversarial_attacker_recovers_an_identity_protection_not_noise_and_leaves_its_model(split, model):
    train, test = split
    before = {k: v.clone() for k, v in model.state_dict().items()}
    floor = prior_floor(train, test, attack_preset("tiny", epochs=1, width=8))
    job = registry.AttackJob(train, test, test, attack_preset("tiny"), floor, protected_train=train,
                             models={"authorised": model}, size="tiny")
    known = registry.ATTACKERS["adversarial"].recover(job)
    generator = torch.Generator().manual_seed(9)
    noise = dataclasses.replace(job, protected_train=torch.rand(train.shape, generator=generator),
                                protected_test=torch.rand(test.shape, generator=generator))
    blind = registry.ATTACKERS["adversarial"].recover(noise)
    assert known["recovered"].shape == (8, 3, 32, 16)
    assert known["psnr"] > blind["psnr"] + 3.0 and known["ssim"] > blind["ssim"] + 0.2, (known, blind)
    assert known["psnr"] > floor["attackers"]["mean"]["psnr"] + 3.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    # deterministic on the CPU
    assert registry.ATTACKERS["adversarial"].recover(job)["psnr"] == known["psnr"]
    with pytest.raises(ValueError, match="needs the other Re-ID model.*--attacker-model"):
        registry.ATTACKERS["adversarial_other"].recover(job)


def test_the_feature_decoder_recovers_more_from_clean_features_than_from_random_ones(split, model):
    train, test = split
    decoder = train_decoder(model, train, TINY.decoder)
    clean = score_images(decode(decoder, model, test), test)
    with torch.no_grad():
        random = decoder(torch.randn(test.shape[0], decoder.mean.numel(), generator=torch.Generator().manual_seed(2))
                         * decoder.std + decoder.mean)
    noise = score_images(random, test)
    assert clean["psnr"] > noise["psnr"] + 0.5 and clean["ssim"] > noise["ssim"] + 0.05, (clean, noise)


def test_the_feature_decoder_is_learned_once_and_its_floor_is_the_clean_features(split, model):
    train, test = split
    floor = prior_floor(train, test, attack_preset("tiny", epochs=1, width=8))
    cache = {}
    job = registry.AttackJob(train, test, test, attack_preset("tiny"), floor, protected_train=train,
                             models={"authorised": model}, size="tiny", cache=cache)
    utility = registry.utility_floor(job, ["feature_decoder"])
    assert list(cache) == [("feature_decoder", "authorised")]
    decoder = cache[("feature_decoder", "authorised")]
    # a "protection" that keeps the image: the attack through the decoder equals the floor
    attack = registry.ATTACKERS["feature_decoder"].recover(job)
    assert cache[("feature_decoder", "authorised")] is decoder
    assert attack["psnr"] == utility["attackers"]["feature_decoder"]["psnr"]
    # the second floor is the best of the decoder and the information-free floor
    assert utility["psnr"] == max(attack["psnr"], floor["psnr"]) and utility["ssim"] == max(attack["ssim"],
                                                                                            floor["ssim"])
    assert registry.utility_floor(job, ["authors"]) is None
