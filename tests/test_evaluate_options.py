"""`pixelfade evaluate` options: the PixelFade settings reach every PixelFade method, the CSV layout's image root
and its up-front check of every listed file, the help's defaults, and the model spec's checkpoint hint."""
import csv
import json

import pytest
import torch

from pixelfade_fast import FadeConfig, cli
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.errors import UserError
from pixelfade_fast.evaluation.methods import METHODS
from pixelfade_fast.models import build_model, save_safetensors
from pixelfade_fast.models.spec import load_model_spec

SIZE = (32, 16)
SHORT = ["--steps", "6", "--init-steps", "1", "--final-steps", "1", "--finish-steps", "0"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    generate_synthped(root / "synthped", num_ids_train=3, num_ids_test=3, images_per_id_per_cam=1, num_cams=2,
                      size=SIZE, seed=4)
    weights = root / "tiny.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=1, input_size=SIZE), weights)
    return root, weights


def _evaluate(tiny, out, *extra) -> dict:
    root, weights = tiny
    code = cli.main(["evaluate", "--data", "synthped", "--root", str(root / "synthped"), "--model",
                     f"tiny_cnn:{weights}", "--attack-preset", "tiny", "--attack-epochs", "1", "--attack-width", "4",
                     "--no-known-noise", "--device", "cpu", "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "report.json").read_text())


def test_the_pixelfade_settings_reach_every_pixelfade_method(tiny, tmp_path):
    methods = "pixelfade,pixelfade_released,noise_weight_0.4,mosaic"
    short = _evaluate(tiny, tmp_path / "short", "--methods", methods, *SHORT)
    shorter = _evaluate(tiny, tmp_path / "shorter", "--methods", methods, *SHORT[:-1], "3")
    for method in ("pixelfade", "pixelfade_released", "noise_weight_0.4"):
        # three finishing steps more change the protected images, hence their features and PSNR
        assert short["privacy"][method]["median_feature_loss"] != shorter["privacy"][method]["median_feature_loss"]
        assert short["privacy"][method]["visual_psnr"] != shorter["privacy"][method]["visual_psnr"]
    assert short["privacy"]["mosaic"]["visual_psnr"] == shorter["privacy"]["mosaic"]["visual_psnr"]


def test_a_default_config_run_equals_the_explicit_defaults(tiny, tmp_path):
    # the generated options' defaults are FadeConfig's: spelling them out changes nothing
    defaults = FadeConfig()
    explicit = ["--steps", str(defaults.steps), "--epsilon", str(defaults.epsilon), "--rise-tolerance",
                str(defaults.rise_tolerance)]
    plain = _evaluate(tiny, tmp_path / "plain", "--methods", "pixelfade")
    spelled = _evaluate(tiny, tmp_path / "spelled", "--methods", "pixelfade", *explicit)
    key = "median_feature_loss"
    assert plain["privacy"]["pixelfade"][key] == spelled["privacy"]["pixelfade"][key]


def test_a_bad_pixelfade_setting_is_one_line(tiny, capsys):
    root, weights = tiny
    assert cli.main(["evaluate", "--data", "synthped", "--root", str(root / "synthped"), "--rise-tolerance", "2",
                     "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --rise-tolerance ") and err.count("\n") == 1


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "pid", "camid", "split"])
        writer.writerows(rows)


def test_csv_paths_are_checked_before_anything_is_loaded(tiny, tmp_path, capsys):
    root, weights = tiny
    images = sorted((root / "synthped" / "bounding_box_test").glob("*.png"))[:2]
    train = sorted((root / "synthped" / "bounding_box_train").glob("*.png"))[:3]
    table = tmp_path / "list" / "data.csv"
    table.parent.mkdir()
    good = [(str(image), 5 + i, 0, "train") for i, image in enumerate(train)]  # absolute paths
    good += [(image.name, pid, camid, split) for camid, split in ((0, "query"), (1, "gallery"))
             for pid, image in enumerate(images)]
    rows = [(f"gone{i}.jpg", 9, 0, "train") for i in range(5)] + good
    _write_csv(table, rows)
    command = ["evaluate", "--data", "csv", "--root", str(table), "--model", f"tiny_cnn:{weights}", "--out",
               str(tmp_path / "out"), "--device", "cpu"]
    assert cli.main(command) == 2  # relative to the CSV's folder: nothing there
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "9 of the 12 listed images are not files" in err and ", ..." in err
    assert "--image-root" in err
    assert not (tmp_path / "out").exists()
    assert cli.main(command + ["--image-root", str(images[0].parent)]) == 2  # the five train rows are still missing
    err = capsys.readouterr().err
    assert "5 of the 12 listed images are not files" in err and "gone0.jpg" in err and "gone3.jpg" not in err
    _write_csv(table, good)
    assert cli.main(command + ["--image-root", str(images[0].parent), "--methods", "blur", "--attack-preset",
                               "tiny", "--attack-epochs", "1", "--attack-width", "4", "--no-known-noise"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["sizes"]["query"] == 2 and report["sizes"]["gallery"] == 2


def test_an_image_root_for_a_folder_layout_is_refused(tiny, capsys):
    root, _ = tiny
    assert cli.main(["evaluate", "--data", "synthped", "--root", str(root / "synthped"), "--image-root", "x",
                     "--out", "x"]) == 2
    assert "no separate image root" in capsys.readouterr().err


def test_the_evaluate_help_has_a_description_and_states_its_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "recovery attack is trained" in text  # the description
    assert "seed of the identity choice, attack and protection (default: 0)" in text
    assert "(default: all)" in text and "--rise-tolerance" in text and "--steps" in text
    assert "--schedule" not in text  # the methods name their schedule
    assert all(name in text for name in METHODS)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model.pth.tar"
    model = build_model("tiny_cnn", seed=2, input_size=SIZE)
    torch.save({"state_dict": model.backbone.state_dict(), "epoch": 3}, path)
    return path


def test_a_checkpoint_without_a_name_suggests_the_names_it_fits(checkpoint):
    with pytest.raises(UserError, match=rf"is a checkpoint: write tiny_cnn:{checkpoint}"):
        load_model_spec(str(checkpoint))
    model = load_model_spec(f"tiny_cnn:{checkpoint}", input_size=SIZE)  # the suggestion works
    assert tuple(model.input_size) == SIZE


def test_a_file_that_fits_no_model_or_is_no_checkpoint_says_so(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3, 3)}, other)
    with pytest.raises(UserError, match="fit no zoo model"):
        load_model_spec(str(other))
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"no checkpoint")
    with pytest.raises(UserError, match="is a file but not a checkpoint read here"):
        load_model_spec(str(junk))


def test_a_pickled_object_is_not_unpickled_for_the_hint(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": {}, "extra": _Marker()}, path)
    with pytest.raises(UserError, match="pickled Python objects"):
        load_model_spec(str(path))
    assert not _Marker.loaded


class _Marker:
    loaded = False

    def __setstate__(self, state):
        type(self).loaded = True


@pytest.mark.parametrize("options, message", [
    (["--attackers", "feature_decoder_other"], "error: the attackers feature_decoder_other need --attacker-model SPEC"),
    (["--attackers", "authors", "--attacker-model", "osnet_x0_25"],
     "error: --attacker-model is used only by the attackers that hold another model"),
    (["--attackers", "authors,stronger"], "error: unknown attackers ['stronger']; choose from authors,"),
    (["--attacker-size", "huge"], "invalid choice: 'huge'")])
def test_attacker_choices_are_checked_before_anything_is_loaded(tmp_path, capsys, options, message):
    # the root does not exist: the attacker options are refused before the data is read
    code = None
    try:
        code = cli.main(["evaluate", "--data", "synthped", "--root", str(tmp_path / "none"), *options, "--out", "x"])
    except SystemExit as stop:  # argparse's own refusal of a bad choice
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
