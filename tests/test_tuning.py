"""The per-machine speed choice (engine/tuning.py): what is tuned and what is not, the measurement, its cost cap,
its cache, and a gallery run's choice recorded and reused by --resume and refine with the same bytes."""
import json

import pytest
import torch

import pixelfade_fast as pf
from gallery_fixtures import FAST, output_bytes, private_seed_file, tiny_weights, write_images
from pixelfade_fast import cli
from pixelfade_fast.engine import Acceleration, prepare_model, tuning
from pixelfade_fast.engine.tuning import Candidate, SpeedChoice, cache_path, choose_speed
from pixelfade_fast.models import build_model

SHAPE = (3, 32, 16)
SHORT = pf.FadeConfig(steps=4, init_steps=1, final_steps=1, finish_steps=1)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path / "cache" / "tuning.json"))


@pytest.fixture
def model():
    return build_model("tiny_cnn", seed=0, input_size=SHAPE[1:])


def _choose(model, **given):
    options = dict(images=400, backend="reference", acceleration=None, batch_size=None, default_batch=16,
                   tune=None) | given
    return choose_speed(model, SHAPE, SHORT, **options)


def test_nothing_is_measured_when_everything_is_given_off_or_the_run_is_small(model, monkeypatch):
    def fail(*args):
        raise AssertionError("measured")

    monkeypatch.setattr(tuning, "_measure", fail)
    given = _choose(model, batch_size=8, acceleration=Acceleration(channels_last=True, fold_batchnorm=False),
                    tune=True)
    assert (given.batch_size, given.acceleration.channels_last, given.acceleration.fold_batchnorm) == (8, True, False)
    assert given.tuning is None and "all given" in given.note
    off = _choose(model, tune=False)
    assert (off.batch_size, off.acceleration, off.tuning) == (16, Acceleration(), None)
    small = _choose(model, images=tuning.MIN_IMAGES - 1)
    assert small.tuning is None and "fewer than" in small.note
    compiled = _choose(model, acceleration=Acceleration(compile=True), tune=True)
    assert compiled.tuning is None and "compile" in compiled.note
    assert not cache_path().exists()


def test_the_fastest_measured_candidate_is_chosen_and_cached(model, monkeypatch):
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2, 4)})
    monkeypatch.setattr(tuning, "COST_FRACTION", 1e9)  # no cap: every candidate measured
    monkeypatch.setattr(tuning, "PRUNE_RATIO", 1e9)
    speed = _choose(model, tune=True)
    choice = speed.tuning
    assert choice.source == "measured" and choice.cost_s > 0
    assert len(choice.measured) == choice.candidates == 8  # 2 batch sizes x 2 layouts x folded or not
    assert choice.ms_per_image_step == min(choice.measured.values()) > 0
    assert choice.measured[choice.choice.label] == choice.ms_per_image_step
    assert (speed.batch_size, speed.acceleration.channels_last, speed.acceleration.fold_batchnorm) == \
        (choice.choice.batch_size, choice.choice.channels_last, choice.choice.fold_batchnorm)
    assert "speed choice: batch" in speed.note

    def fail(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(tuning, "_measure", fail)
    again = _choose(model, tune=True)
    assert again.tuning.source == "cache" and again.tuning.choice == choice.choice
    fixed_layout = dict(acceleration=Acceleration(channels_last=not choice.choice.channels_last), tune=True)
    with pytest.raises(AssertionError, match="measured again"):  # another candidate set: not the cached choice
        _choose(model, **fixed_layout)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(AssertionError, match="measured again"):  # other weights: another model digest
        _choose(model, tune=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        with pytest.raises(AssertionError, match="measured again"):  # another thread count: another machine
            _choose(model, tune=True)
    finally:
        torch.set_num_threads(threads)


def test_the_cost_cap_stops_measuring_and_a_cut_short_choice_is_not_cached(model, monkeypatch):
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2, 4)})
    speed = _choose(model, images=2, tune=True)  # 2 images x 5 steps: the cap is spent by the first try
    assert list(speed.tuning.measured) == [Candidate(2, False, True).label]
    assert speed.tuning.candidates == 4  # batch 4 is more than the run's 2 images
    assert not cache_path().exists()


def test_an_unreadable_cache_is_measured_again_and_replaced(model, monkeypatch):
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2,)})
    monkeypatch.setattr(tuning, "COST_FRACTION", 1e9)
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text("{not json")
    assert _choose(model, tune=True).tuning.source == "measured"
    assert json.loads(cache_path().read_text())["format"] == tuning.CACHE_FORMAT


def test_protect_tunes_only_when_asked_and_reports_the_choice(model, monkeypatch):
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2, 3)})
    monkeypatch.setattr(tuning, "COST_FRACTION", 1e9)
    images = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(0))
    plain = pf.protect(model, images, SHORT, seed=3, backend="reference", progress=False)
    assert plain.timings["tuning"] is None and plain.timings["batch_size"] == 16
    tuned = pf.protect(model, images, SHORT, seed=3, backend="reference", progress=False, tune=True)
    choice = SpeedChoice.from_dict(tuned.timings["tuning"]).choice
    assert tuned.timings["batch_size"] == choice.batch_size
    assert tuned.timings["acceleration"]["channels_last"] == choice.channels_last
    explicit = pf.protect(model, images, SHORT, seed=3, backend="reference", progress=False,
                          batch_size=choice.batch_size,
                          acceleration=Acceleration(channels_last=choice.channels_last,
                                                    fold_batchnorm=choice.fold_batchnorm))
    assert torch.equal(explicit.images, tuned.images)  # the choice is an ordinary explicit run


def test_channels_last_leaves_the_callers_model_in_its_layout(model):
    probe = torch.rand(2, *SHAPE)
    prepare_model(model, Acceleration(fold_batchnorm=False, channels_last=True).resolved(torch.device("cpu")), probe,
                  feature_norm=False)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous() for w in convs)


NAMES = [f"img{k}.png" for k in range(7)]
CHOICE = Candidate(3, True, False)  # not the defaults (batch 32, NCHW, folded): the record must carry it


def test_a_resumed_tuned_run_gives_the_uninterrupted_runs_bytes_and_never_measures_again(tmp_path, monkeypatch,
                                                                                          capsys):
    """The machine has a cached choice (measured once): a stopped run resumed with it, and refine, follow the
    choice run.json records, and give the uninterrupted run's bytes."""
    root = tmp_path / "in"
    write_images(root, NAMES)
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    seed_file = private_seed_file(tmp_path / "seed", 0x5EED << 200)
    measured = []

    def measure(model, shape, config, backend, acceleration, candidates, images):  # every candidate "measured"
        measured.append(candidates)
        assert CHOICE in candidates
        return SpeedChoice(CHOICE, 1.0, {c.label: 1.0 if c == CHOICE else 2.0 for c in candidates},
                           len(candidates), 0.5, "measured")

    monkeypatch.setattr(tuning, "_measure", measure)
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2, 3)})
    no_batch = FAST[:FAST.index("--batch-size")] + FAST[FAST.index("--batch-size") + 2:]

    def protect(out, *extra):
        return cli.main(["protect", *no_batch, str(root), str(out), "--model", f"tiny_cnn:{weights}",
                         "--seed-file", str(seed_file), "--epsilon", "0.00002", "--epsilon-scale", "absolute",
                         *extra])

    whole = tmp_path / "whole"
    assert protect(whole, "--tune") == 0
    assert "speed choice: batch 3, NHWC, BatchNorm kept" in capsys.readouterr().err
    record = json.loads((whole / "run.json").read_text())
    assert record["batch_size"] == 3 and record["acceleration"]["channels_last"] is True
    assert record["acceleration"]["fold_batchnorm"] is False
    assert record["speed_tuning"]["choice"] == {"batch_size": 3, "channels_last": True, "fold_batchnorm": False}
    out = tmp_path / "out"
    assert protect(out, "--tune") == 0
    assert len(measured) == 1  # the second run found the choice in the cache
    assert json.loads((out / "run.json").read_text())["speed_tuning"]["source"] == "cache"
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:3]))  # stopped after the first batch of 3
    for name in NAMES[3:]:
        (out / name).unlink()
    assert protect(out, "--resume") == 0  # no --batch-size, no layout options: the run's
    assert len(measured) == 1
    assert output_bytes(out) == output_bytes(whole)
    explicit = tmp_path / "explicit"
    assert protect(explicit, "--batch-size", "3", "--channels-last", "--no-fold-batchnorm") == 0
    assert output_bytes(explicit) == output_bytes(whole)  # tuning chose; it did not change what the choice does
    assert cli.main(["refine", str(root), str(out), "--no-progress", "--steps", "2"]) == 0  # the run's choice
    assert len(measured) == 1
    capsys.readouterr()
    assert protect(out, "--resume", "--batch-size", "2") == 2
    assert "batch_size: 3 then, 2 now" in capsys.readouterr().err


def test_the_command_does_not_tune_a_small_run_or_with_no_tune(tmp_path, monkeypatch):
    root = tmp_path / "in"
    write_images(root, NAMES[:3])
    weights = tiny_weights(tmp_path / "tiny.safetensors")

    def fail(*args):
        raise AssertionError("measured")

    monkeypatch.setattr(tuning, "_measure", fail)
    no_batch = FAST[:FAST.index("--batch-size")] + FAST[FAST.index("--batch-size") + 2:]
    for extra, out in (([], tmp_path / "auto"), (["--no-tune"], tmp_path / "off")):
        assert cli.main(["protect", *no_batch, str(root), str(out), "--model", f"tiny_cnn:{weights}", *extra]) == 0
        record = json.loads((out / "run.json").read_text())
        assert record["batch_size"] == 32 and record["speed_tuning"] is None
        assert record["acceleration"]["fold_batchnorm"] is True and record["acceleration"]["channels_last"] is False


def test_the_command_tunes_a_large_cpu_run_by_default_but_not_a_torchrun_rank(tmp_path, monkeypatch, capsys):
    root = tmp_path / "in"
    write_images(root, NAMES[:4])
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    measured = []

    def measure(model, shape, config, backend, acceleration, candidates, images):
        measured.append(images)
        return SpeedChoice(candidates[-1], 1.0, {c.label: 1.0 for c in candidates}, len(candidates), 0.1, "measured")

    monkeypatch.setattr(tuning, "_measure", measure)
    monkeypatch.setattr(tuning, "MIN_IMAGES", 4)  # "large" for this test
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2, 4)})
    no_batch = FAST[:FAST.index("--batch-size")] + FAST[FAST.index("--batch-size") + 2:]
    seed_file = tmp_path / "seed"
    assert cli.main(["seed", str(seed_file)]) == 0

    def protect(out, *extra):
        return cli.main(["protect", *no_batch, str(root), str(out), "--model", f"tiny_cnn:{weights}",
                         "--seed-file", str(seed_file), *extra])

    assert protect(tmp_path / "single") == 0
    assert measured == [4]
    assert json.loads((tmp_path / "single" / "run.json").read_text())["speed_tuning"]["source"] == "measured"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert protect(tmp_path / "ranks") == 0  # rank 0 of 2: the defaults, as every other rank
    assert measured == [4]
    assert json.loads((tmp_path / "ranks" / "run.json").read_text())["batch_size"] == 32
    capsys.readouterr()
    assert protect(tmp_path / "ranks_tuned", "--tune") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --tune under torchrun") and "Traceback" not in err
    assert not (tmp_path / "ranks_tuned").exists()


def test_the_cache_lives_where_the_docs_say(tmp_path, monkeypatch):
    assert cache_path() == tmp_path / "cache" / "tuning.json"  # $PIXELFADE_TUNING_CACHE first
    monkeypatch.delenv(tuning.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "pixelfade_fast" / "tuning.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_path() == tmp_path / "home" / ".cache" / "pixelfade_fast" / "tuning.json"


def test_protect_with_tune_none_tunes_as_the_command_does(model, monkeypatch):
    monkeypatch.setattr(tuning, "BATCH_CANDIDATES", {"cpu": (2,)})
    monkeypatch.setattr(tuning, "COST_FRACTION", 1e9)
    images = torch.rand(3, *SHAPE, generator=torch.Generator().manual_seed(1))
    small = pf.protect(model, images, SHORT, seed=3, backend="reference", progress=False, tune=None)
    assert small.timings["tuning"] is None and "fewer than" in small.timings["speed"]
    monkeypatch.setattr(tuning, "MIN_IMAGES", 3)
    large = pf.protect(model, images, SHORT, seed=3, backend="reference", progress=False, tune=None)
    assert large.timings["tuning"]["source"] == "measured" and large.timings["batch_size"] == 2
