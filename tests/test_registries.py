"""Every extension registry: a toy registration appears in the command line (choices, --help or listing) and
works through the same path as the built-in entries; the registries share one shape (pixelfade_fast.registry).

Toy entries go into the one registry object that every importer holds, and are taken out again afterwards."""
import pytest
import torch
from torch import nn

from pixelfade_fast import FadeConfig, _backend, cli, ops
from pixelfade_fast import reference as ref
from pixelfade_fast.data import datasets
from pixelfade_fast.data.records import ReIDSplit, Record
from pixelfade_fast.errors import UserError
from pixelfade_fast.evaluation import methods
from pixelfade_fast.models import spec as model_spec
from pixelfade_fast.models.extractor import FeatureExtractor


def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.fixture
def toy_backend():
    """A backend whose ops are the reference's, counted."""
    calls = []

    def op(name):
        def run(*args):
            calls.append(name)
            return getattr(ref, name)(*args)
        return run

    status = _backend.BackendStatus("toy", True, False, "toy runs on the CPU only")
    _backend.register_backend(_backend.Backend("toy", lambda: status, op, "a test backend", auto_devices=()))
    yield calls
    _backend.BACKENDS.unregister("toy")


def test_a_registered_backend_is_listed_chosen_by_name_and_runs_the_ops(toy_backend, capsys):
    assert cli.main(["backends"]) == 0
    assert "toy        runs on: cpu        toy runs on the CPU only" in capsys.readouterr().out
    assert "toy" in _backend.backend_choices()
    keys = ref.derive_keys(3, range(2))
    torch.testing.assert_close(ops.fade_noise(keys, (3, 4, 2), backend="toy"), ref.fade_noise(keys, (3, 4, 2)),
                               rtol=0, atol=0)
    assert toy_backend == ["fade_noise"]
    assert _backend.resolve("auto", torch.device("cpu")) != "toy"  # auto_devices=(): only by name
    with pytest.raises(RuntimeError, match="cannot run on cuda tensors here: toy runs on the CPU only"):
        _backend.resolve("toy", torch.device("cuda"))
    with pytest.raises(ValueError, match="already registered"):
        _backend.register_backend(_backend.BACKENDS["toy"])


def test_auto_prefers_the_backends_in_registration_order():
    expected = next(name for name, b in _backend.BACKENDS.items() if "cpu" in b.auto_devices and b.status().cpu)
    assert _backend.resolve("auto", torch.device("cpu")) == expected
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        _backend.resolve("nope", torch.device("cpu"))


class _Mean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


@pytest.fixture
def toy_model_format():
    def load(spec, options):
        return FeatureExtractor(_Mean(), input_size=options.input_size or (8, 4), mean=(0.5,) * 3, std=(0.25,) * 3,
                                model_id=spec)

    model_spec.register_model_format(model_spec.ModelFormat(
        "channel_mean", "FILE.mean", "the per-channel mean (a test format)", lambda s: s.endswith(".mean"), load))
    yield
    model_spec.MODEL_FORMATS.unregister("channel_mean")


def test_a_registered_model_format_is_in_the_help_and_loads(toy_model_format, capsys):
    for command in ("protect", "evaluate"):
        assert "FILE.mean: the per-channel mean (a test format)" in _help(capsys, command)
    assert cli.main(["models"]) == 0
    assert "FILE.mean" in capsys.readouterr().out
    model = model_spec.load_model_spec("x.mean", input_size=(6, 2))
    assert model.model_id == "x.mean" and tuple(model.input_size) == (6, 2)
    assert model(torch.ones(1, 3, 6, 2)).shape == (1, 3)
    with pytest.raises(UserError, match=r"fits no model format \(.*FILE.mean\)"):
        model_spec.load_model_spec("resnet9000")


def _invert(model, images, seed, config):
    return 1.0 - images


@pytest.fixture
def toy_method():
    yield methods.register_method(methods.Method("invert", _invert, "1 - x (a test method)", pixel_filter=True))
    methods.METHODS.unregister("invert")


def test_a_registered_method_is_in_the_help_and_the_suite_runs_it(toy_method, capsys, tmp_path):
    text = _help(capsys, "evaluate")
    assert "invert" in text
    # not in the default list: the default list is the registered methods marked default
    assert "default: pixelfade,pixelfade_released,mosaic,blur,avih;" in text
    assert methods.check_methods(["invert", "blur"]) == ("invert", "blur")
    from pixelfade_fast.evaluation.attack_settings import attack_preset
    from pixelfade_fast.evaluation.suite import SuiteSettings, protect_and_attack
    from pixelfade_fast.models import build_model

    model = build_model("tiny_cnn", seed=0, input_size=(32, 16))
    generator = torch.Generator().manual_seed(0)
    test, train = torch.rand(4, 3, 32, 16, generator=generator), torch.rand(6, 3, 32, 16, generator=generator)
    settings = SuiteSettings(methods=("invert",), attack=attack_preset("tiny", epochs=1, width=8, max_pairs=None))
    floor = {"psnr": 0.0, "ssim": 0.0, "attackers": {"mean": {"psnr": 0.0, "ssim": 0.0}}}
    run = protect_and_attack("invert", model, test, train, floor, settings, FadeConfig())
    torch.testing.assert_close(run.protected, 1.0 - test)
    assert run.privacy["visual_psnr"] > 0 and "known_noise_psnr" not in run.privacy


def test_methods_are_registered_once_with_their_properties():
    assert methods.default_methods() == ("pixelfade", "pixelfade_released", "mosaic", "blur", "avih")
    assert {n for n, m in methods.METHODS.items() if m.pixel_filter} == {"mosaic", "blur"}
    assert {n for n, m in methods.METHODS.items() if m.known_noise} == {"pixelfade"}
    with pytest.raises(ValueError, match="unknown methods \\['sharpen'\\]"):
        methods.check_methods(["blur", "sharpen"])
    with pytest.raises(ValueError, match="already registered"):
        methods.register_method(methods.METHODS["blur"])


@pytest.fixture
def toy_dataset(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"not read here")

    def read(root):
        return ReIDSplit(query=[Record(str(image), 1, 0)], gallery=[Record(str(image), 1, 1)])

    datasets.register_dataset(datasets.Dataset("toylist", read, "one image twice (a test layout)"))
    yield
    datasets.DATASETS.unregister("toylist")


def test_a_registered_dataset_is_a_data_choice_and_is_read(toy_dataset, capsys):
    assert "toylist: one image twice (a test layout)" in _help(capsys, "evaluate")
    args = cli.build_parser().parse_args(["evaluate", "--data", "toylist", "--root", "r", "--out", "o"])
    assert args.data == "toylist"
    split = datasets.read_dataset("toylist", "r")
    assert [r.camid for r in split.query + split.gallery] == [0, 1]
    with pytest.raises(ValueError, match="no separate image root"):
        datasets.read_dataset("toylist", "r", image_root="elsewhere")
    with pytest.raises(ValueError, match="^unknown dataset layout 'nope'; choose one of market1501, .*, toylist$"):
        datasets.read_dataset("nope", "r")


def test_every_registry_is_one_registry_shape():
    """The five registries are pixelfade_fast.registry.Registry: duplicates refused, misses name the choices,
    registration order kept, a toy entry gone again after unregister."""
    from pixelfade_fast.registry import Registry, UnknownNameError

    from pixelfade_fast.evaluation.attackers import ATTACKERS

    for registry, kind in ((_backend.BACKENDS, "backend"), (model_spec.MODEL_FORMATS, "model format"),
                           (methods.METHODS, "protection method"), (datasets.DATASETS, "dataset layout"),
                           (ATTACKERS, "attacker")):
        assert isinstance(registry, Registry) and registry.kind == kind
        first = registry.records()[0]
        with pytest.raises(ValueError, match=f"^a {kind} named {first.name!r} is already registered$"):
            registry.register(first)
        with pytest.raises(UnknownNameError, match=f"^unknown {kind} 'nope'; choose one of {', '.join(registry)}$"):
            registry["nope"]
        assert "nope" not in registry and registry.get("nope") is None and first.name in registry
        assert registry.names() == tuple(registry) == tuple(r.name for r in registry.records())
    with pytest.raises(ValueError, match="already registered"):  # "auto" chooses among the backends
        _backend.register_backend(_backend.Backend("auto", None, None, "not a backend"))


def test_a_registry_keeps_order_and_gives_back_what_it_took():
    from pixelfade_fast.registry import Registry

    class Entry:
        def __init__(self, name):
            self.name = name

    registry = Registry("toy")
    entries = [registry.register(Entry(name)) for name in ("b", "a", "c")]
    assert registry.names() == ("b", "a", "c") and list(registry.values()) == entries
    assert registry.unregister("a") is entries[1] and registry.names() == ("b", "c") and len(registry) == 2
    with pytest.raises(ValueError, match="^unknown toy 'a'; choose one of b, c$"):
        registry.unregister("a")


@pytest.fixture
def toy_attacker():
    from pixelfade_fast.evaluation import attackers
    from pixelfade_fast.evaluation.attack import score_images

    # the perfect attacker: it returns the originals (so it must win the best-of)
    yield attackers.register_attacker(attackers.Attacker(
        "oracle", lambda job: score_images(job.original_test, job.original_test), "returns the originals (a test)"))
    attackers.ATTACKERS.unregister("oracle")


def test_a_registered_attacker_is_in_the_help_and_wins_the_best_of(toy_attacker, capsys):
    from pixelfade_fast.cli.evaluate_command import parse_attackers
    from pixelfade_fast.evaluation.attack_settings import attack_preset
    from pixelfade_fast.evaluation.suite import SuiteSettings, protect_and_attack
    from pixelfade_fast.models import build_model

    assert "oracle: returns the originals (a test)" in _help(capsys, "evaluate")
    assert parse_attackers("oracle") == ("oracle",) and "oracle" in parse_attackers("all")
    with pytest.raises(UserError, match=r"unknown attackers \['nope'\]; choose from .*oracle"):
        parse_attackers("oracle,nope")
    model = build_model("tiny_cnn", seed=0, input_size=(32, 16))
    generator = torch.Generator().manual_seed(0)
    test, train = torch.rand(4, 3, 32, 16, generator=generator), torch.rand(6, 3, 32, 16, generator=generator)
    settings = SuiteSettings(methods=("blur",), attack=attack_preset("tiny", epochs=1, width=8, max_pairs=None),
                             attackers=("oracle",))
    floor = {"psnr": 0.0, "ssim": 0.0, "attackers": {"mean": {"psnr": 0.0, "ssim": 0.0}}}
    run = protect_and_attack("blur", model, test, train, floor, settings, FadeConfig())
    assert run.privacy["psnr_attacker"] == run.privacy["ssim_attacker"] == "oracle"
    assert run.privacy["attackers"]["oracle"]["psnr"] == 100.0 and run.privacy["psnr"] == 100.0
    assert run.privacy["unet_psnr"] < 100.0  # the defaults still ran beside it
