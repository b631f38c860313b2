"""Tiny end-to-end ``pixelfade evaluate --task t2i`` and ``--task vi`` on a tiny SynthPed (seconds)."""
import json

import pytest

from pixelfade_fast import cli
from pixelfade_fast.data import generate_synthped, read_market1501
from pixelfade_fast.data.captions import caption_vocabulary, read_captions
from pixelfade_fast.data.records import ReIDSplit
from pixelfade_fast.evaluation.text_to_image import evaluate_dual_encoder
from pixelfade_fast.evaluation.visible_infrared import cross_modality_scores
from pixelfade_fast.models import build_model, save_safetensors
from pixelfade_fast.models.dual_encoder import DualEncoder, DualEncoderSpec, save_dual_encoder

SIZE = (32, 16)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthped")
    generate_synthped(root, num_ids_train=3, num_ids_test=4, images_per_id_per_cam=1, num_cams=2, size=SIZE,
                      seed=7, infrared_cams=1, captions_per_image=2)
    return root


def _evaluate(root, task, weights, out, *extra):
    return cli.main(["evaluate", "--task", task, "--data", "synthped", "--root", str(root), "--weights", str(weights),
                     "--attack-epochs", "1", "--attack-width", "8", "--device", "cpu", "--out", str(out), *extra])


def test_evaluate_text_to_image(tiny_root, tmp_path, capsys):
    spec = DualEncoderSpec(image_model="tiny_cnn", input_size=SIZE, embed_dim=16, text_width=16, text_layers=1,
                           text_heads=2, max_length=32)
    model = DualEncoder(spec, caption_vocabulary(), seed=0).eval()
    weights = tmp_path / "dual.safetensors"
    save_dual_encoder(model, weights)
    assert _evaluate(tiny_root, "t2i", weights, tmp_path / "t2i", "--methods", "pixelfade,avih,mosaic,blur") == 0
    report = json.loads((tmp_path / "t2i" / "report.json").read_text())
    assert list(report["retrieval"]) == ["unprotected", "pixelfade", "avih", "mosaic", "blur"]
    assert report["sizes"]["text_queries"] == 2 * 4 * 2 and report["sizes"]["gallery"] == 4 * 2  # visible only
    # The unprotected row is the dual encoder's own text-to-image score on the visible test images.
    split = read_market1501(tiny_root)
    visible = ReIDSplit(query=[r for r in split.query if r.camid < 2],
                        gallery=[r for r in split.gallery if r.camid < 2])
    captions = {**read_captions(tiny_root / "query"), **read_captions(tiny_root / "bounding_box_test")}
    expected = evaluate_dual_encoder(model, visible.query, visible.gallery, captions)
    assert report["retrieval"]["unprotected"]["text->gallery"]["mAP"] == pytest.approx(expected["mAP"])
    for method, privacy in report["privacy"].items():
        assert privacy["leakage_ssim"] == pytest.approx(privacy["ssim"] - report["floor"]["ssim"])
    assert report["privacy"]["pixelfade"]["visual_ssim"] < report["privacy"]["mosaic"]["visual_ssim"]
    assert 0 < report["chance"]["text->gallery"]["mAP"] < 1
    text = (tmp_path / "t2i" / "report.md").read_text()
    assert "chance (random ranking)" in text and "--task t2i" in text and "Example queries" in text
    assert (tmp_path / "t2i" / "figure.png").stat().st_size > 1000
    assert "| pixelfade |" in capsys.readouterr().out


def test_evaluate_visible_infrared(tiny_root, tmp_path):
    model = build_model("tiny_cnn", seed=1, input_size=SIZE)
    weights = tmp_path / "vi.safetensors"
    save_safetensors(model, weights)
    assert _evaluate(tiny_root, "vi", weights, tmp_path / "vi", "--model", "tiny_cnn", "--methods",
                     "pixelfade,mosaic") == 0
    report = json.loads((tmp_path / "vi" / "report.json").read_text())
    sizes = report["sizes"]
    assert (sizes["infrared_gallery"], sizes["visible_gallery"], sizes["infrared_query"]) == (4, 8, 4)
    split = read_market1501(tiny_root)
    expected = cross_modality_scores(model, split, {2})
    for direction in ("visible->infrared", "infrared->visible"):
        assert report["retrieval"]["unprotected"][direction]["mAP"] == pytest.approx(expected[direction]["mAP"])
        assert report["retrieval"]["mosaic"][direction]["num_valid_queries"] == expected[direction]["num_queries"]
    groups = report["privacy"]["pixelfade"]["groups"]
    assert groups["infrared"]["count"] == 4 and groups["visible"]["count"] == 8
    mean_psnr = (4 * groups["infrared"]["psnr"] + 8 * groups["visible"]["psnr"]) / 12
    assert mean_psnr == pytest.approx(report["privacy"]["pixelfade"]["unet_psnr"], rel=1e-6)  # groups: U-Net alone
    assert "leakage PSNR / SSIM (infrared, U-Net)" in (tmp_path / "vi" / "report.md").read_text()


def test_scenario_errors_say_what_to_do(tiny_root, tmp_path, capsys):
    plain = tmp_path / "plain"
    generate_synthped(plain, num_ids_train=2, num_ids_test=2, images_per_id_per_cam=1, num_cams=2, size=SIZE, seed=1)
    weights = tmp_path / "vi.safetensors"
    save_safetensors(build_model("tiny_cnn", seed=1, input_size=SIZE), weights)
    assert _evaluate(plain, "vi", weights, tmp_path / "x", "--model", "tiny_cnn") == 2
    assert "modalities.json" in capsys.readouterr().err
    assert _evaluate(plain, "t2i", weights, tmp_path / "x") == 2
    assert "captions.jsonl" in capsys.readouterr().err
    assert _evaluate(tiny_root, "t2i", weights, tmp_path / "x") == 2
    assert "not a dual-encoder file" in capsys.readouterr().err
    assert cli.main(["evaluate", "--task", "vi", "--data", "cuhk01", "--root", str(plain), "--out", "x"]) == 2
    assert "needs --data synthped" in capsys.readouterr().err
    assert _evaluate(tiny_root, "vi", weights, tmp_path / "x", "--methods", "sharpen") == 2
    assert "unknown methods" in capsys.readouterr().err
