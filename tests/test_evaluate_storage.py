"""pixelfade evaluate --format: every figure is of the decoded stored files (issue 23)."""
import json

import pytest
import torch

from pixelfade_fast import cli
from pixelfade_fast.config import FadeConfig
from pixelfade_fast.data import generate_synthped
from pixelfade_fast.data.images import load_images
from pixelfade_fast.engine import extract_features
from pixelfade_fast.evaluation.attack_settings import attack_preset
from pixelfade_fast.evaluation.methods import METHODS
from pixelfade_fast.evaluation.stored import protect_stored
from pixelfade_fast.evaluation.suite import SuiteSettings, run_suite
from pixelfade_fast.models import build_model, save_safetensors
from pixelfade_fast.storage_format import StorageFormat, to_arrays

SIZE = (32, 16)
CONFIG = FadeConfig(steps=8, init_steps=2, final_steps=2, finish_steps=4)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthped")
    split = generate_synthped(root, num_ids_train=3, num_ids_test=4, images_per_id_per_cam=1, num_cams=2,
                              size=SIZE, seed=4)
    return root, split


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


def _is_a_decoded_file(pixels: torch.Tensor, storage: StorageFormat) -> bool:
    """Decoding is a fixed point only approximately for JPEG; every decoded file is on the 8-bit grid."""
    return torch.equal(pixels, torch.from_numpy(to_arrays(pixels)).permute(0, 3, 1, 2).float() / 255)


@pytest.mark.parametrize("method", ["pixelfade", "mosaic"])
def test_protect_stored_returns_decoded_files_and_their_size(tiny_data, method):
    _, split = tiny_data
    images = load_images([r.path for r in split.query], SIZE)
    model = build_model("tiny_cnn", seed=0, input_size=SIZE)
    storage = StorageFormat("jpeg", 80)
    stored, size = protect_stored(METHODS[method], model, images, 3, CONFIG, storage)
    plain, none = protect_stored(METHODS[method], model, images, 3, CONFIG, None)
    assert none is None and size > 100 and _is_a_decoded_file(stored, storage)
    assert not torch.equal(stored, plain)


def test_suite_scores_the_stored_images(tiny_data, tmp_path):
    root, split = tiny_data
    model = build_model("tiny_cnn", seed=0, input_size=SIZE)
    attack = attack_preset("tiny", epochs=1, width=8, max_pairs=None)
    storage = StorageFormat("jpeg", 85)
    result = run_suite(model, split, SuiteSettings(methods=("pixelfade",), known_noise=False, attack=attack,
                                                    storage=storage), dataset="tiny", config=CONFIG)
    privacy = result.privacy["pixelfade"]
    assert privacy["stored_bytes_per_image"] > 100
    # met ε is that of the decoded files protect_stored returns for the same seed (the suite's test seed)
    test = load_images([r.path for r in split.query + split.gallery], SIZE)
    stored, _ = protect_stored(METHODS["pixelfade"], model, test, 1, CONFIG, storage)
    original = extract_features(model, test)
    loss = (extract_features(model, stored) - original).square().mean(dim=1)
    assert privacy["met_epsilon_rate"] == pytest.approx(CONFIG.met_epsilon_rate(loss, original))
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(model, weights)
    base = ["evaluate", "--data", "synthped", "--root", str(root), "--model", "tiny_cnn", "--weights", str(weights),
            "--input-size", *map(str, SIZE), "--methods", "mosaic", "--attack-preset", "tiny", "--attack-epochs", "1",
            "--attack-width", "8", "--device", "cpu", "--no-known-noise"]
    assert cli.main([*base, "--format", "webp", "--quality", "70", "--out", str(tmp_path / "out")]) == 0
    payload = json.loads((tmp_path / "out" / "report.json").read_text())
    assert payload["settings"]["storage"] == {"name": "webp", "quality": 70}
    assert payload["privacy"]["mosaic"]["stored_bytes_per_image"] > 0
    assert "stored as webp q70 and decoded" in (tmp_path / "out" / "report.md").read_text()


def test_quality_without_format_is_one_line(tiny_data, capsys):
    root, _ = tiny_data
    assert cli.main(["evaluate", "--data", "synthped", "--root", str(root), "--quality", "80", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quality 80 needs --format jpeg or webp" in err[0]
