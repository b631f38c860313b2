"""protect(): meets ε, replaces every element, is batch-invariant, never syncs inside the loop, rejects bad input."""
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import pixelfade_fast as pf
from pixelfade_fast import engine
from engine_models import SmallReIDNet, smooth_images

CPU_BACKENDS = [name for name, status in pf.backends().items() if status.cpu and name != "triton"]


@pytest.fixture(scope="module")
def model():
    return SmallReIDNet()


@pytest.fixture(scope="module")
def images():
    return smooth_images(8, seed=3)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_meets_epsilon_and_replaces_every_element(model, images, backend):
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    with torch.no_grad():
        noise = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(0))
        noise_loss = engine.per_image_loss(model(noise), model((images - mean) / std))
    assert (noise_loss > 5 * pf.FadeConfig().epsilon).all()  # ε is a real constraint for this model
    result = pf.protect(model, images, seed=11, backend=backend)
    assert result.backend == backend
    assert result.met_epsilon.all(), f"final losses {result.final_loss.tolist()}"
    assert result.met_rate == 1.0
    assert (result.images >= 0).all() and (result.images <= 1).all()
    clamped = (result.images == 0) | (result.images == 1)
    unchanged = (result.images == images) & ~clamped
    assert not unchanged.any(), f"{int(unchanged.sum())} elements kept their original value"
    assert set(result.timings) >= {"total_s", "per_image_s", "images_per_s"}


def test_result_of_an_image_does_not_depend_on_its_batch(model, images):
    uids = [40, 41, 42, 43, 44, 45, 46, 47]
    whole = pf.protect(model, images, uids=uids, seed=5, batch_size=8, backend="reference")
    part = pf.protect(model, images[[5, 2, 7]], uids=[45, 42, 47], seed=5, batch_size=3, backend="reference")
    torch.testing.assert_close(part.images, whole.images[[5, 2, 7]], rtol=0, atol=1e-5)
    torch.testing.assert_close(part.final_loss, whole.final_loss[[5, 2, 7]], rtol=1e-4, atol=1e-7)
    other_seed = pf.protect(model, images[:1], uids=[40], seed=6, backend="reference")
    assert (other_seed.images - whole.images[:1]).abs().max() > 0.1  # the seed changes the noise


class ForbidHostReads(TorchDispatchMode):
    """Fails on every op that copies a device value to the host or has a data-dependent output shape."""

    FORBIDDEN = {"_local_scalar_dense", "item", "nonzero", "nonzero_numpy", "is_nonzero", "equal", "allclose",
                 "masked_select", "unique", "_unique", "_unique2", "unique_consecutive", "unique_dim", "any_", "all_"}

    def __init__(self):
        super().__init__()
        self.ops_seen = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.FORBIDDEN:
            raise AssertionError(f"host read inside the protection loop: aten.{name}")
        self.ops_seen += 1
        return func(*args, **(kwargs or {}))


def test_mode_catches_a_host_read():
    with pytest.raises(AssertionError, match="_local_scalar_dense"):
        with ForbidHostReads():
            torch.ones(2).sum().item()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("schedule", ["paper", "released"])
def test_no_host_read_inside_the_loop(model, images, monkeypatch, backend, schedule):
    modes = []
    original = engine.Protector.run

    def guarded(*args, **kwargs):
        mode = ForbidHostReads()
        modes.append(mode)
        with mode:
            return original(*args, **kwargs)

    monkeypatch.setattr(engine.Protector, "run", guarded)
    config = pf.FadeConfig(steps=12, init_steps=2, final_steps=2, finish_steps=2, schedule=schedule, quantize=True)
    result = pf.protect(model, images[:3], config, seed=1, backend=backend)
    assert len(modes) == 1 and modes[0].ops_seen > 100
    assert result.images.shape == (3, 3, 64, 32)


def test_quantize_gives_images_on_the_8bit_grid(model, images):
    result = pf.protect(model, images[:2], pf.FadeConfig(quantize=True), seed=2, backend="reference")
    scaled = result.images * 255
    assert (scaled - scaled.round()).abs().max() < 1e-3
    assert result.met_epsilon.all()


def test_model_settings_are_restored(model, images):
    model.train()
    params = list(model.parameters())
    pf.protect(model, images[:1], pf.FadeConfig(steps=3, init_steps=1, final_steps=1), seed=0)
    assert model.training and all(p.requires_grad for p in params)
    model.eval()


class TupleModel(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.mean, self.std = inner.mean, inner.std

    def forward(self, x):
        return self.inner(x), {"unused": x}


def test_tuple_outputs_are_adapted(model, images):
    cfg = pf.FadeConfig(steps=3, init_steps=1, final_steps=1)
    direct = pf.protect(model, images[:2], cfg, seed=4, backend="reference")
    wrapped = pf.protect(TupleModel(model), images[:2], cfg, seed=4, backend="reference")
    assert torch.equal(direct.images, wrapped.images)


class BadOutput(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize("make_input, message", [
    (lambda: torch.rand(3, 64, 32), "rank 4"),
    (lambda: torch.rand(2, 1, 64, 32), r"3 \(RGB\) channels"),
    (lambda: torch.rand(2, 3, 64, 32) * 2, r"\[0, 1\]"),
    (lambda: torch.full((2, 3, 64, 32), float("nan")), "NaN"),
    (lambda: torch.randint(0, 255, (2, 3, 64, 32), dtype=torch.uint8), "floating point"),
    (lambda: torch.rand(0, 3, 64, 32), "empty"),
])
def test_bad_images_get_clear_errors(model, make_input, message):
    with pytest.raises((ValueError, TypeError), match=message):
        pf.protect(model, make_input())


def test_bad_model_output_and_devices_get_clear_errors(model, images):
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        pf.protect(BadOutput(), images[:2])
    meta_model = SmallReIDNet().to("meta")
    with pytest.raises(ValueError, match="model is on meta"):
        pf.protect(meta_model, images[:2])
    with pytest.raises(ValueError, match="uids has 1 entries"):
        pf.protect(model, images[:2], uids=[1])
    with pytest.raises(ValueError, match="unique"):
        pf.protect(model, images[:2], uids=[1, 1])
    with pytest.raises(ValueError, match="unknown backend"):
        pf.protect(model, images[:2], backend="cuda-fast")


def test_observer_sees_every_step_with_the_schedule_flags(model, images):
    # absolute ε: one threshold for every image, so the flags can be checked against the measured loss alone
    config = pf.FadeConfig(steps=8, init_steps=2, final_steps=2, finish_steps=3, epsilon_scale="absolute")
    records = []

    def observe(record: engine.StepRecord) -> None:
        records.append((record.step, record.loss.clone(), record.flags.do_co.clone(), record.flags.do_pro.clone(),
                        int(record.flags.phase)))

    pf.protect(model, images[:3], config, seed=2, backend="reference", batch_size=3, observer=observe)
    assert [r[0] for r in records] == list(range(config.total_steps))
    assert [r[4] for r in records] == [0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3]  # init, main, final, finish codes
    for step, loss, do_co, do_pro, phase in records:
        if phase == 1:  # main: CO exactly where the measured loss is at or above ε
            assert torch.equal(do_co, loss >= config.epsilon) and torch.equal(do_pro, ~do_co)


def test_one_loop_per_batch_shape_is_reused(model, images):
    config = pf.FadeConfig(steps=4, init_steps=1, final_steps=1, finish_steps=0)
    keys = pf.reference.derive_keys(1, range(8))
    with engine.Protector(model, config, backend="reference") as protector:
        first = protector.protect_batch(images[:3], keys[:3]).pixels
        loops = dict(protector._loops)
        again = protector.protect_batch(images[:3], keys[:3]).pixels
        protector.protect_batch(images[3:5], keys[3:5])
        assert protector._loops[(3, 3, 64, 32)] is loops[(3, 3, 64, 32)] and len(protector._loops) == 2
    assert torch.equal(first, again)  # static buffers are reset between batches
    assert protector.notes["cuda_graph"] == "off"


def test_acceleration_defaults_per_device():
    cpu = engine.Acceleration().resolved(torch.device("cpu"))
    assert (cpu.fold_batchnorm, cpu.channels_last, cpu.cuda_graph, cpu.amp, cpu.compile, cpu.compact_every) == (
        True, False, False, False, False, 10)
    cuda = engine.Acceleration().resolved(torch.device("cuda"))
    assert (cuda.channels_last, cuda.cuda_graph) == (True, True)


def test_bf16_autocast_keeps_the_final_check_in_fp32(model, images):
    config = pf.FadeConfig(steps=10, init_steps=2, final_steps=2, finish_steps=5)
    result = pf.protect(model, images[:2], config, seed=3, backend="reference",
                        acceleration=engine.Acceleration(amp=True))
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.mean, model.std))
    with torch.no_grad():
        again = engine.per_image_loss(model((result.images - mean) / std), model((images[:2] - mean) / std))
    torch.testing.assert_close(result.final_loss, again, rtol=1e-4, atol=1e-6)  # measured in fp32, not bf16
    assert result.timings["acceleration"]["amp"] is True


def test_any_feature_network_through_feature_extractor(model, images):
    """The docs' example: a bare network wrapped with its input space protects like the model that has one."""
    from pixelfade_fast.models import FeatureExtractor

    config = pf.FadeConfig(steps=6, init_steps=2, final_steps=2, finish_steps=2)
    wrapped = FeatureExtractor(model, input_size=(64, 32), mean=model.mean, std=model.std, model_id="mine")
    direct = pf.protect(model, images[:2], config, seed=4, backend="reference")
    through = pf.protect(wrapped, images[:2], config, seed=4, backend="reference")
    assert torch.equal(direct.images, through.images)
    with pytest.raises(ValueError, match="expects 32x16"):
        pf.protect(FeatureExtractor(model, input_size=(32, 16)), images[:2])


def test_the_finish_runs_only_the_images_still_above_epsilon(model, images):
    """Compaction: images below ε leave the batch every few finish steps, and the result matches the loop that
    keeps computing them (they no longer change), up to the rounding of another batch size."""
    config = pf.FadeConfig(steps=10, init_steps=2, final_steps=2, finish_steps=30, epsilon=0.001)  # staggered
    seen = []

    def observe(record: engine.StepRecord) -> None:
        seen.append((record.step, record.loss.numel(), None if record.rows is None else record.rows.tolist()))

    # seed 1 (RNG contract 2): some images fall below ε during the finish, so the batch does shrink
    compact = pf.protect(model, images, config, seed=1, backend="cpp", batch_size=8, observer=observe,
                         acceleration=engine.Acceleration(compact_every=3))
    full = pf.protect(model, images, config, seed=1, backend="cpp", batch_size=8,
                      acceleration=engine.Acceleration(compact_every=0))
    sizes = [size for _, size, _ in seen]
    assert sizes[:config.steps + 3] == [8] * (config.steps + 3)  # compaction starts after 3 finish steps
    assert min(sizes) < 8 and sizes == sorted(sizes, reverse=True)
    for step, size, rows in seen:
        assert rows is None or (len(rows) == size and set(rows) <= set(range(8)))
    assert torch.equal(compact.met_epsilon, full.met_epsilon)
    torch.testing.assert_close(compact.final_loss, full.final_loss, rtol=0.05, atol=1e-4)
    assert (compact.images - full.images).abs().mean() < 2e-3
