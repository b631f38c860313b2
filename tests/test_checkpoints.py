"""Checkpoints of the public Re-ID toolkits: key layouts, forward semantics, containers, errors.

tests/data/checkpoint_layouts/*.json hold, for each public model, the {key: shape} of its state dict
and the features it computes on a fixed input with fixed weights (tests/helpers.reference_weights),
read by instantiating the model from the toolkit's own source at the commit recorded in the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from helpers import (REFERENCE_PIXEL_BUFFERS, assert_close_report, randomise_bn_stats, reference_input,
                     reference_weights)
from pixelfade_fast.models import (IMAGENET_MEAN, IMAGENET_STD, MODEL_INFO, MODEL_NAMES, backbone_layout,
                                   build_model, canonical_name, load_checkpoint_model, matching_models,
                                   save_safetensors)
from pixelfade_fast.models.fastreid import fastreid_to_zoo_keys
from pixelfade_fast.models.registry import FASTREID, PIXELFADE, REID_SURVEY, TORCHREID

LAYOUTS = Path(__file__).resolve().parent / "data" / "checkpoint_layouts"
ASSETS = Path(__file__).resolve().parent.parent / "pixelfade_fast" / "assets"

# fixture -> (zoo name, constructor options that reproduce the source's code at that commit)
FIXTURES = {
    **{f"torchreid_osnet_{w}": (f"osnet_{w}", {}) for w in ("x1_0", "x0_75", "x0_5", "x0_25")},
    **{f"torchreid_osnet_ain_{w}": (f"osnet_ain_{w}", {}) for w in ("x1_0", "x0_75", "x0_5", "x0_25")},
    "torchreid_resnet50": ("resnet50", {}),
    "reid_survey_agw_r50_nl": ("agw_r50_nl", {}),
    "fastreid_master_bagtricks_R50": ("fastreid_bot_r50", {}),
    "fastreid_master_bagtricks_R50-ibn": ("fastreid_bot_r50_ibn", {}),
    "fastreid_v1.0.0_bagtricks_R50": ("fastreid_bot_r50", {}),
    # fast-reid v0.1.1 pads the stem max pool; load_checkpoint_model infers it from the head's key names.
    "fastreid_v0.1.1_bagtricks_R50": ("fastreid_bot_r50", {"stem_pool_kind": "padded"}),
    "fastreid_v0.1.1_bagtricks_R50-ibn": ("fastreid_bot_r50_ibn", {"stem_pool_kind": "padded"}),
}
FEATURE_RTOL = 1e-5  # ours vs the public code: same operations, summation order may differ
SANITY = {"osnet_ain_x1_0": 512, "resnet50": 2048, "fastreid_bot_r50": 2048, "fastreid_bot_r50_ibn": 2048}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fixture(name: str) -> dict:
    return json.loads((LAYOUTS / f"{name}.json").read_text())  # a missing fixture fails here


def _public_weights(name: str) -> dict[str, torch.Tensor]:
    """Reference weights under the public model's key names."""
    return reference_weights(_fixture(name)["layout"])


def _to_zoo_keys(zoo_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return fastreid_to_zoo_keys(state) if MODEL_INFO[zoo_name].toolkit == FASTREID else state


def _features(model, x):
    with torch.no_grad():
        return model(x)


def _training_states() -> tuple[dict, dict]:
    """Real optimizer and scheduler state dicts (tensors, a Counter of milestones), as trainers save them."""
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=3e-4, amsgrad=True)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return optimizer.state_dict(), torch.optim.lr_scheduler.MultiStepLR(optimizer, [40, 90]).state_dict()


def _save_as_toolkit(state: dict[str, torch.Tensor], toolkit: str, path: Path) -> None:
    """A checkpoint in the container the toolkit writes (with its extra entries)."""
    optimizer, scheduler = _training_states()
    if toolkit == TORCHREID:  # torchtools.save_checkpoint of a DataParallel model
        torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "epoch": 60,
                    "rank1": np.float32(0.875), "optimizer": optimizer, "scheduler": scheduler}, path)
    elif toolkit == FASTREID:  # fastreid.utils.checkpoint.Checkpointer.save
        torch.save({"model": state, "optimizer": optimizer, "scheduler": scheduler, "iteration": 1234}, path)
    else:  # ReID-Survey: ignite's ModelCheckpoint saves model.state_dict()
        torch.save(state, path)


def test_every_fixture_is_checked():
    assert {p.stem for p in LAYOUTS.glob("*.json")} == set(FIXTURES)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_layout_matches_public_source(fixture):
    doc = _fixture(fixture)
    assert doc["repository"] in ("KaiyangZhou/deep-person-reid", "JDAI-CV/fast-reid", "mangye16/ReID-Survey")
    assert len(doc["commit"]) == 40
    name, options = FIXTURES[fixture]
    public = {k: tuple(s) for k, s in doc["layout"].items()}
    # The family's documented key mapping (identity except for fast-reid), applied to the public keys.
    mapped = {k: tuple(v.shape) for k, v in _to_zoo_keys(name, _public_weights(fixture)).items()}
    ours = {k: tuple(v.shape) for k, v in
            build_model(name, num_classes=doc["num_classes"], **options).backbone.state_dict().items()}
    assert ours == mapped
    if MODEL_INFO[name].toolkit != FASTREID:
        assert ours == public  # torchreid and ReID-Survey files load with their own key names
    else:
        assert {k for k in public if not k.startswith(("heads.", "pixel_"))} == {
            k for k in ours if not k.startswith(("heads.", "classifier."))}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_toolkit_checkpoint_gives_the_public_models_features(fixture, tmp_path):
    """A file as the toolkit saves it, with the reference weights, loads through load_checkpoint_model
    (no options given) and gives the features the public code computes with those weights."""
    doc = _fixture(fixture)
    name, _ = FIXTURES[fixture]
    toolkit = MODEL_INFO[name].toolkit
    path = tmp_path / f"{fixture}.pth"
    public = _public_weights(fixture)
    _save_as_toolkit(public, toolkit, path)

    loaded = load_checkpoint_model(name, path)
    ref = doc["reference_features"]
    model = loaded.model
    assert model.feature_dim == ref["dim"] and model.model_id == f"{name}:{path.name}"
    signature = model(reference_input()).detach().double()
    directions = torch.randn(ref["dim"], 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert_close_report(signature @ directions, torch.tensor(ref["projection"], dtype=torch.float64),
                        FEATURE_RTOL, f"{fixture} projections")
    assert_close_report(signature[:, :16], torch.tensor(ref["head"], dtype=torch.float64), FEATURE_RTOL,
                        f"{fixture} first values")

    classifier_keys = [k for k in public if k.endswith(("classifier.weight", "classifier.bias")) or k == "heads.weight"]
    assert classifier_keys and model.backbone.classifier is None
    assert len(loaded.report.dropped) == len(classifier_keys) and loaded.report.not_loaded == ()
    assert matching_models(public) == [name]

    facts = loaded.facts
    if "pixel_mean" in public:  # fast-reid v0.1.1 / v1.0.0 save the Baseline's 0-255 normalisation
        expected_mean = tuple(v / 255 for v in REFERENCE_PIXEL_BUFFERS["pixel_mean"])
        expected_std = tuple(v / 255 for v in REFERENCE_PIXEL_BUFFERS["pixel_std"])
        assert facts.mean == pytest.approx(expected_mean) and facts.std == pytest.approx(expected_std)
        torch.testing.assert_close(model.mean.view(3), torch.tensor(expected_mean))
        torch.testing.assert_close(model.std.view(3), torch.tensor(expected_std))
    else:
        assert facts.mean is None and facts.std is None
        torch.testing.assert_close(model.mean.view(3), torch.tensor(IMAGENET_MEAN))
        torch.testing.assert_close(model.std.view(3), torch.tensor(IMAGENET_STD))
    assert facts.input_size is None and model.input_size == (256, 128)
    if toolkit == TORCHREID:
        assert facts.container.startswith("{'state_dict'") and facts.metadata == {"epoch": "60", "rank1": "0.875"}
    elif toolkit == FASTREID:
        assert facts.container.startswith("{'model'") and facts.metadata == {"iteration": "1234"}
        padded = any(k.startswith("heads.bnneck.") for k in public)
        assert model.backbone.construction_options() == {"stem_pool_kind": "padded" if padded else "ceil"}
        assert any(n.startswith("heads.bnneck.* keys") for n in facts.notes) == padded
        assert any(n.startswith("stem max pool 'ceil'") for n in facts.notes) != padded
    else:
        assert facts.container == "state dict" and facts.metadata == {}


# --------------------------------------------------------------------------- round trips of our own models

ROUND_TRIPS = [  # (zoo name, container, constructor options)
    ("osnet_ain_x0_25", TORCHREID, {}),
    ("resnet50", TORCHREID, {}),
    ("fastreid_bot_r50", FASTREID, {}),
    ("fastreid_bot_r50_ibn", FASTREID, {"pool": "gem"}),
    ("agw_r50_nl", REID_SURVEY, {}),
    ("fastreid_bot_r50", "safetensors", {"stem_pool_kind": "padded"}),
    ("osnet_ain_x0_25", "safetensors", {}),
]


def _zoo_to_fastreid_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict under fast-reid's current names (classifier heads.weight), plus its pixel buffers."""
    out = {("heads.weight" if k == "classifier.weight" else k): v for k, v in state.items()}
    out |= {k: torch.tensor(v).view(1, 3, 1, 1) for k, v in REFERENCE_PIXEL_BUFFERS.items()}
    return out


@pytest.mark.parametrize("name,container,options", ROUND_TRIPS)
def test_round_trip_of_random_model(name, container, options, tmp_path):
    src = build_model(name, num_classes=11, seed=3, input_size=(64, 32), **options)
    randomise_bn_stats(src.backbone, torch.Generator().manual_seed(4))
    state = src.backbone.state_dict()
    if container == "safetensors":
        path = tmp_path / f"{name}.safetensors"
        save_safetensors(src, path)
    else:
        path = tmp_path / f"{name}.pth"
        _save_as_toolkit(_zoo_to_fastreid_keys(state) if container == FASTREID else state, container, path)

    loaded = load_checkpoint_model(name, path)
    dst = loaded.model
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(5))
    assert_close_report(_features(dst, x), _features(src, x), 1e-6, f"{name} via {container}")
    assert dst.backbone.classifier is None and "classifier.weight" in loaded.report.dropped
    assert dst.backbone.construction_options() == src.backbone.construction_options()
    if container == "safetensors":  # save_safetensors records the preprocessing
        assert loaded.facts.input_size == (64, 32) == dst.input_size
        assert loaded.facts.feature_layer == src.feature_layer
    if container == FASTREID:
        expected = tuple(v / 255 for v in REFERENCE_PIXEL_BUFFERS["pixel_mean"])
        assert loaded.facts.mean == pytest.approx(expected)
        torch.testing.assert_close(dst.mean.view(3), torch.tensor(expected))


def test_arguments_override_what_the_file_says(tmp_path):
    src = build_model("osnet_ain_x0_25", seed=1, input_size=(64, 32), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    path = tmp_path / "ain.safetensors"
    save_safetensors(src, path)
    from_file = load_checkpoint_model("osnet_ain_x0_25", path).model
    assert from_file.input_size == (64, 32)
    torch.testing.assert_close(from_file.std.view(3), torch.full((3,), 0.2))
    given = load_checkpoint_model("osnet_ain_x0_25", path, input_size=(128, 64), mean=IMAGENET_MEAN,
                                  std=IMAGENET_STD, feature_layer="pool", model_id="mine")
    assert given.model.input_size == (128, 64) and given.model.feature_layer == "pool"
    assert given.model.model_id == "mine" and given.facts.input_size == (64, 32)
    torch.testing.assert_close(given.model.mean.view(3), torch.tensor(IMAGENET_MEAN))


# --------------------------------------------------------------------------- new architectures


@pytest.mark.parametrize("name", sorted(SANITY))
def test_features_shape_gradients_and_batch_independence(name):
    model = build_model(name, seed=0)
    randomise_bn_stats(model.backbone, torch.Generator().manual_seed(6))
    x = torch.randn(3, 3, 256, 128, generator=torch.Generator().manual_seed(7)).requires_grad_(True)
    features = model(x)
    assert features.shape == (3, SANITY[name]) == (3, model.feature_dim)
    assert torch.isfinite(features).all()
    (grad,) = torch.autograd.grad(features.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    alone = _features(model, x[1:2].detach())
    assert_close_report(alone[0], features[1].detach(), 1e-5, f"{name}: image alone vs in a batch of 3")


# --------------------------------------------------------------------------- errors


def test_fastreid_file_loaded_as_osnet_names_the_problem(tmp_path):
    path = tmp_path / "market_bot_R50.pth"
    _save_as_toolkit(_public_weights("fastreid_master_bagtricks_R50"), FASTREID, path)
    with pytest.raises(ValueError, match=r"cannot be loaded as osnet_x1_0 \(torchreid layout\): missing keys "
                                         r"\(\d+\): conv1\.conv\..*unexpected keys \(\d+\): backbone\..*"
                                         r"fastreid_bot_r50 \(fast-reid\): load it under that name"):
        load_checkpoint_model("osnet_x1_0", path)


def test_torchreid_resnet50_loaded_as_fastreid_bot_names_the_problem(tmp_path):
    path = tmp_path / "resnet50_market.pth.tar-60"
    _save_as_toolkit(_public_weights("torchreid_resnet50"), TORCHREID, path)
    with pytest.raises(ValueError, match=r"cannot be loaded as fastreid_bot_r50 \(fast-reid layout\): missing "
                                         r"keys \(\d+\): backbone\.conv1\.weight.*unexpected keys \(\d+\): conv1\.weight"
                                         r".*those of resnet50 \(torchreid\)"):
        load_checkpoint_model("bagtricks_R50", path)
    # The IBN variant's keys differ from the plain one's in every IBN block's bn1.
    ibn = tmp_path / "bot_ibn.pth"
    _save_as_toolkit(_public_weights("fastreid_master_bagtricks_R50-ibn"), FASTREID, ibn)
    with pytest.raises(ValueError, match=r"backbone\.layer1\.0\.bn1\.IN\.weight.*fastreid_bot_r50_ibn"):
        load_checkpoint_model("fastreid_bot_r50", ibn)


def test_files_that_are_not_checkpoints(tmp_path):
    junk = tmp_path / "notes.pth"
    junk.write_bytes(b"these are not weights")
    with pytest.raises(ValueError, match="could not read .*notes.pth.* as a torch checkpoint"):
        load_checkpoint_model("resnet50", junk)
    scalars = tmp_path / "log.pth"
    torch.save({"epoch": 3, "rank1": 0.5}, scalars)
    with pytest.raises(ValueError, match=r"not a state dict: entries \['epoch', 'rank1'\] are not tensors"):
        load_checkpoint_model("resnet50", scalars)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="as a safetensors file"):
        load_checkpoint_model("resnet50", bad_st)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_checkpoint_model("resnet50", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown model name 'bot'"):
        load_checkpoint_model("bot", junk)


def test_malformed_preprocessing_records(tmp_path):
    state = _public_weights("fastreid_v1.0.0_bagtricks_R50") | {"pixel_mean": torch.zeros(1, 4, 1, 1)}
    path = tmp_path / "four_channels.pth"
    _save_as_toolkit(state, FASTREID, path)
    with pytest.raises(ValueError, match="pixel_mean has 4 values; expected 3"):
        load_checkpoint_model("fastreid_bot_r50", path)
    tensors = {k: v.contiguous() for k, v in build_model("osnet_ain_x0_25").backbone.state_dict().items()}
    st = tmp_path / "bad_meta.safetensors"
    save_file(tensors, str(st), metadata={"mean": "[0.5, 0.5]"})
    with pytest.raises(ValueError, match=r"metadata 'mean' is '\[0.5, 0.5\]', expected a JSON list of 3 numbers"):
        load_checkpoint_model("osnet_ain_x0_25", st)


# --------------------------------------------------------------------------- registry


def test_model_listing():
    assert set(MODEL_INFO) == set(MODEL_NAMES)
    assert {info.toolkit for info in MODEL_INFO.values()} == {TORCHREID, FASTREID, REID_SURVEY, PIXELFADE}
    bundled = {name: info.bundled_weights for name, info in MODEL_INFO.items() if info.bundled_weights}
    assert bundled == {"osnet_x0_25": "osnet_x0_25_synthped.safetensors"}
    assert (ASSETS / bundled["osnet_x0_25"]).is_file()
    assert all(info.description and "\n" not in info.description for info in MODEL_INFO.values())
    assert canonical_name("bagtricks_R50-ibn") == "fastreid_bot_r50_ibn"
    assert canonical_name("resnet50_nl") == "agw_r50_nl"
    for name in ("osnet_ain_x1_0", "fastreid_bot_r50_ibn"):  # the cached layout is the model's
        real = {k: tuple(v.shape) for k, v in build_model(name).backbone.state_dict().items()}
        assert backbone_layout(name) == real
