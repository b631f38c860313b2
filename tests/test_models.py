"""Model zoo: checkpoint-compatible layouts, forward semantics, wrapper, weight I/O, registry.

Expected state-dict layouts below are derived by hand from the reference architectures
(torchreid/models/osnet.py of KaiyangZhou/deep-person-reid; modeling/baseline.py and
modeling/backbones/resnet_nl.py of mangye16/ReID-Survey), independently of the package code.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from pixelfade_fast.models import (
    AGW, IMAGENET_MEAN, IMAGENET_STD, MODEL_NAMES, GeMPooling, NonLocalBlock, OSNet, ReIDModel, TinyCNN,
    build_model, load_weights, save_safetensors,
)
from pixelfade_fast.models.osnet import OSBlock

from helpers import randomise_bn_stats

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# --------------------------------------------------------------------------- expected layouts


def _bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _conv_bn(prefix: str, c_in: int, c_out: int, k: int) -> dict[str, tuple]:
    return {f"{prefix}.conv.weight": (c_out, c_in, k, k), **_bn(f"{prefix}.bn", c_out)}


def _light_conv(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.conv1.weight": (c, c, 1, 1), f"{prefix}.conv2.weight": (c, 1, 3, 3),
            **_bn(f"{prefix}.bn", c)}


def _os_block(prefix: str, c_in: int, c_out: int, instance_norm: bool) -> dict[str, tuple]:
    mid = c_out // 4
    keys = _conv_bn(f"{prefix}.conv1", c_in, mid, 1)
    keys |= _light_conv(f"{prefix}.conv2a", mid)
    for stream, depth in (("conv2b", 2), ("conv2c", 3), ("conv2d", 4)):
        for i in range(depth):
            keys |= _light_conv(f"{prefix}.{stream}.{i}", mid)
    keys |= {f"{prefix}.gate.fc1.weight": (mid // 16, mid, 1, 1), f"{prefix}.gate.fc1.bias": (mid // 16,),
             f"{prefix}.gate.fc2.weight": (mid, mid // 16, 1, 1), f"{prefix}.gate.fc2.bias": (mid,)}
    keys |= _conv_bn(f"{prefix}.conv3", mid, c_out, 1)
    if c_in != c_out:
        keys |= _conv_bn(f"{prefix}.downsample", c_in, c_out, 1)
    if instance_norm:
        keys |= {f"{prefix}.IN.weight": (c_out,), f"{prefix}.IN.bias": (c_out,)}
    return keys


def osnet_expected_layout(channels, num_classes: int, instance_norm: bool = False) -> dict[str, tuple]:
    c0, c1, c2, c3 = channels
    if instance_norm:  # torchreid's stem norm is then an affine InstanceNorm (no running stats)
        keys = {"conv1.conv.weight": (c0, 3, 7, 7), "conv1.bn.weight": (c0,), "conv1.bn.bias": (c0,)}
    else:
        keys = _conv_bn("conv1", 3, c0, 7)
    for stage, (a, b, transition) in (("conv2", (c0, c1, True)), ("conv3", (c1, c2, True)),
                                      ("conv4", (c2, c3, False))):
        use_in = instance_norm and stage == "conv2"
        keys |= _os_block(f"{stage}.0", a, b, use_in) | _os_block(f"{stage}.1", b, b, use_in)
        if transition:
            keys |= _conv_bn(f"{stage}.2.0", b, b, 1)
    keys |= _conv_bn("conv5", c3, c3, 1)
    keys |= {"fc.0.weight": (512, c3), "fc.0.bias": (512,), **_bn("fc.1", 512)}
    if num_classes:
        keys |= {"classifier.weight": (num_classes, 512), "classifier.bias": (num_classes,)}
    return keys


def agw_expected_layout(num_classes: int) -> dict[str, tuple]:
    keys = {"base.conv1.weight": (64, 3, 7, 7), **_bn("base.bn1", 64)}
    c_in = 64
    for s, (blocks, n_nl) in enumerate(zip((3, 4, 6, 3), (0, 2, 3, 0))):
        width = 64 * 2 ** s
        c_out = 4 * width
        for b in range(blocks):
            p = f"base.layer{s + 1}.{b}"
            keys |= {f"{p}.conv1.weight": (width, c_in, 1, 1), **_bn(f"{p}.bn1", width),
                     f"{p}.conv2.weight": (width, width, 3, 3), **_bn(f"{p}.bn2", width),
                     f"{p}.conv3.weight": (c_out, width, 1, 1), **_bn(f"{p}.bn3", c_out)}
            if b == 0:
                keys |= {f"{p}.downsample.0.weight": (c_out, c_in, 1, 1), **_bn(f"{p}.downsample.1", c_out)}
            c_in = c_out
        for i in range(n_nl):  # ReID-Survey's Non_local has 1 embedding channel
            p = f"base.NL_{s + 1}.{i}"
            for conv in ("g", "theta", "phi"):
                keys |= {f"{p}.{conv}.weight": (1, c_out, 1, 1), f"{p}.{conv}.bias": (1,)}
            keys |= {f"{p}.W.0.weight": (c_out, 1, 1, 1), f"{p}.W.0.bias": (c_out,), **_bn(f"{p}.W.1", c_out)}
    keys |= {"global_pool.p": (1,), **_bn("bottleneck", 2048)}
    if num_classes:
        keys |= {"classifier.weight": (num_classes, 2048)}
    return keys


def _layout(module: torch.nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _param_count(layout: dict[str, tuple], exclude_prefix: str = "classifier.") -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(s) for k, s in layout.items()
               if not k.endswith(buffers) and not k.startswith(exclude_prefix))


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("name,channels,params_m", [
    # Parameter counts (millions, without classifier) from torchreid's model zoo table.
    ("osnet_x1_0", (64, 256, 384, 512), 2.2), ("osnet_x0_75", (48, 192, 288, 384), 1.3),
    ("osnet_x0_5", (32, 128, 192, 256), 0.6), ("osnet_x0_25", (16, 64, 96, 128), 0.2),
])
def test_osnet_state_dict_matches_torchreid_layout(name, channels, params_m):
    model = build_model(name, num_classes=1000)
    expected = osnet_expected_layout(channels, 1000)
    assert _layout(model.backbone) == expected
    assert round(_param_count(expected) / 1e6, 1) == params_m
    if name == "osnet_x1_0":
        # Hand count: stem 6 + stage2 (92+86+6) + stage3 (92+86+6) + stage4 (92+86) + conv5 6
        # + fc 7 + classifier 2 (an OSBlock has 86 keys, 92 with downsample).
        assert len(expected) == 567
        assert expected["conv2.0.gate.fc1.weight"] == (4, 64, 1, 1)
        assert expected["conv4.1.conv2d.3.conv2.weight"] == (128, 1, 3, 3)
        assert expected["conv3.2.0.conv.weight"] == (384, 384, 1, 1)
        assert _param_count(expected) == 2_169_508


def test_osnet_ibn_and_no_classifier_layouts():
    assert _layout(build_model("osnet_ibn_x1_0").backbone) == osnet_expected_layout(
        (64, 256, 384, 512), 0, instance_norm=True)
    assert not any(k.startswith("classifier") for k in build_model("osnet_x0_25").backbone.state_dict())


def test_agw_state_dict_matches_reid_survey_layout():
    model = build_model("agw_r50_nl", num_classes=751)
    expected = agw_expected_layout(751)
    assert _layout(model.backbone) == expected
    # ResNet-50 without fc: 318 keys; 5 non-local blocks x 13; GeM p; BNNeck 5; classifier 1.
    assert len(expected) == 390
    assert expected["base.NL_3.2.W.1.weight"] == (1024,)
    assert not any(k.startswith(("base.NL_1", "base.NL_4")) for k in expected)
    # ResNet-50 trunk 23,508,032 + non-local 2*(7*512+3) + 3*(7*1024+3) + p + BNNeck 2*2048.
    assert _param_count(expected) == 23_508_032 + 2 * (7 * 512 + 3) + 3 * (7 * 1024 + 3) + 1 + 4096
    assert not model.backbone.bottleneck.bias.requires_grad


# --------------------------------------------------------------------------- forward semantics


def _bn_eval(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def test_forward_shapes_at_256x128():
    x = torch.randn(2, 3, 256, 128)
    dims = {"osnet_x1_0": 512, "osnet_x0_75": 512, "osnet_x0_5": 512, "osnet_x0_25": 512,
            "osnet_ibn_x1_0": 512, "osnet_ain_x1_0": 512, "osnet_ain_x0_75": 512, "osnet_ain_x0_5": 512,
            "osnet_ain_x0_25": 512, "resnet50": 2048, "agw_r50_nl": 2048, "fastreid_bot_r50": 2048,
            "fastreid_bot_r50_ibn": 2048, "tiny_cnn": 64}
    assert set(dims) == set(MODEL_NAMES)
    for name, dim in dims.items():
        model = build_model(name, seed=0)
        with torch.no_grad():
            f = model(x)
        assert f.shape == (2, dim) and f.dtype == torch.float32 and torch.isfinite(f).all(), name
        assert model.feature_dim == dim


def test_osblock_matches_functional_reference():
    gen = torch.Generator().manual_seed(1)
    block = OSBlock(48, 128).eval()
    randomise_bn_stats(block, gen)
    x = torch.randn(2, 48, 10, 6, generator=gen)

    def light(m, t):
        depthwise = m.conv2.weight.shape[0]
        t = F.conv2d(F.conv2d(t, m.conv1.weight), m.conv2.weight, padding=1, groups=depthwise)
        return F.relu(_bn_eval(t, m.bn))

    def conv_bn(m, t, relu):
        t = _bn_eval(F.conv2d(t, m.conv.weight), m.bn)
        return F.relu(t) if relu else t

    def gate(t):
        w = F.relu(F.conv2d(t.mean((2, 3), keepdim=True), block.gate.fc1.weight, block.gate.fc1.bias))
        return t * torch.sigmoid(F.conv2d(w, block.gate.fc2.weight, block.gate.fc2.bias))

    with torch.no_grad():
        x1 = conv_bn(block.conv1, x, True)
        streams = []
        for depth, seq in ((1, [block.conv2a]), (2, block.conv2b), (3, block.conv2c), (4, block.conv2d)):
            t = x1
            assert len(seq) == depth
            for m in seq:
                t = light(m, t)
            streams.append(gate(t))
        ref = F.relu(conv_bn(block.conv3, sum(streams), False) + conv_bn(block.downsample, x, False))
        torch.testing.assert_close(block(x), ref, rtol=1e-5, atol=1e-5)


def test_non_local_matches_quadratic_form():
    gen = torch.Generator().manual_seed(2)
    for inter in (1, 3):
        nl = NonLocalBlock(16, inter_channels=inter).eval()
        randomise_bn_stats(nl, gen)  # also makes W[1].weight non-zero so the block is not the identity
        x = torch.randn(2, 16, 6, 5, generator=gen)
        with torch.no_grad():
            theta = nl.theta(x).flatten(2).transpose(1, 2)  # [B, N, C']
            phi = nl.phi(x).flatten(2)  # [B, C', N]
            g = nl.g(x).flatten(2).transpose(1, 2)  # [B, N, C']
            attn = theta @ phi / (6 * 5)  # [B, N, N]
            y = (attn @ g).transpose(1, 2).reshape(2, inter, 6, 5)
            ref = x + nl.W(y)
            out = nl(x)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        assert (out - x).abs().max() > 1e-3


def test_gem_pooling_and_agw_feature_layers():
    gen = torch.Generator().manual_seed(3)
    gem = GeMPooling(p=2.5)
    x = torch.rand(2, 4, 5, 3, generator=gen) - 0.1  # some values below eps get clamped
    ref = (x.clamp(min=1e-6) ** 2.5).mean((2, 3)) ** (1 / 2.5)
    torch.testing.assert_close(gem(x), ref)

    model = build_model("agw_r50_nl", seed=0)
    randomise_bn_stats(model.backbone.bottleneck, gen)
    img = torch.randn(2, 3, 256, 128, generator=gen)
    with torch.no_grad():
        pooled = model.backbone.global_pool(model.backbone.base(img))
        bnneck = model(img)
    assert pooled.shape == (2, 2048)
    torch.testing.assert_close(bnneck, _bn_eval(pooled, model.backbone.bottleneck), rtol=1e-4, atol=1e-4)


def test_tiny_cnn_size_and_batch_invariance():
    model = build_model("tiny_cnn", seed=0, input_size=(64, 32))
    n_params = sum(p.numel() for p in model.parameters())
    assert 40_000 <= n_params <= 60_000
    randomise_bn_stats(model.backbone, torch.Generator().manual_seed(4))
    x = torch.randn(5, 3, 64, 32)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i:i + 1]) for i in range(5)])
        reordered = model(x.flip(0)).flip(0)
    assert batched.shape == (5, 64)
    torch.testing.assert_close(single, batched, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(reordered, batched, rtol=1e-5, atol=1e-6)


def test_input_gradients_match_finite_differences():
    """The protection engine differentiates features w.r.t. the input image."""
    tiny = build_model("tiny_cnn", seed=0).double()
    randomise_bn_stats(tiny.backbone, torch.Generator().manual_seed(6))
    x = torch.randn(2, 3, 16, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tiny, (x,), eps=1e-6, atol=1e-5)

    # Central differences along a random direction; a tiny step keeps the chance that it
    # crosses a ReLU kink negligible (float64 rounding error stays ~1e-9 relative).
    gen = torch.Generator().manual_seed(8)
    for name in ("osnet_x0_25", "agw_r50_nl"):
        model = build_model(name, seed=0).double()
        x = torch.randn(1, 3, 64, 32, dtype=torch.float64, generator=gen).requires_grad_(True)
        w = torch.randn(model.feature_dim, dtype=torch.float64, generator=gen)
        (grad,) = torch.autograd.grad((model(x) @ w).sum(), x)
        v, h = torch.randn(x.shape, dtype=torch.float64, generator=gen), 1e-7
        with torch.no_grad():
            numeric = ((model(x + h * v) - model(x - h * v)) @ w).sum() / (2 * h)
        torch.testing.assert_close((grad * v).sum(), numeric, rtol=1e-5, atol=1e-8, msg=name)


# --------------------------------------------------------------------------- wrapper


def test_wrapper_input_space_and_bounds():
    model = build_model("tiny_cnn", seed=0, mean=(0.5, 0.25, 0.125), std=(0.5, 0.2, 0.3))
    space = model.input_space
    assert space.to_json() == {"mean": [0.5, 0.25, 0.125], "std": [0.5, 0.2, 0.3]}
    default = build_model("tiny_cnn", seed=0).input_space
    torch.testing.assert_close(torch.tensor(default.mean), torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(torch.tensor(default.std), torch.tensor(IMAGENET_STD))
    pixels = torch.rand(3, 3, 8, 4)
    x = space.normalise(pixels)
    torch.testing.assert_close(x, (pixels - model.mean) / model.std)
    torch.testing.assert_close(space.to_pixels(x), pixels)
    lo, hi = space.bounds("cpu")
    assert lo.shape == hi.shape == (3,)
    torch.testing.assert_close(lo, space.normalise(torch.zeros(1, 3, 1, 1)).view(3))
    torch.testing.assert_close(hi, space.normalise(torch.ones(1, 3, 1, 1)).view(3))
    assert (x >= lo.view(1, 3, 1, 1) - 1e-6).all() and (x <= hi.view(1, 3, 1, 1) + 1e-6).all()
    assert list(model.state_dict()) == ["backbone." + k for k in model.backbone.state_dict()]


def test_wrapper_stays_in_eval_mode_and_validates():
    model = build_model("tiny_cnn", seed=0)
    assert not model.training and not model.backbone.training
    with pytest.raises(RuntimeError, match="backbone.train"):
        model.train()
    model.eval()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"feature_layer='nope'.*\['fc', 'pool'\]"):
        ReIDModel(TinyCNN(), feature_layer="nope")
    with pytest.raises(ValueError, match="std must be positive"):
        ReIDModel(TinyCNN(), std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="input_size"):
        ReIDModel(TinyCNN(), input_size=(256,))
    pool = ReIDModel(model.backbone, feature_layer="pool")
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 16)
        torch.testing.assert_close(model(x), model.backbone.fc(pool(x)))


# --------------------------------------------------------------------------- weight I/O


def _features(model, x):
    with torch.no_grad():
        return model(x)


def test_torchreid_style_checkpoint_round_trip(tmp_path):
    src = build_model("osnet_x0_25", num_classes=751, seed=1)
    randomise_bn_stats(src.backbone, torch.Generator().manual_seed(5))
    ckpt = {"state_dict": {"module." + k: v for k, v in src.backbone.state_dict().items()},
            "epoch": 60, "rank1": np.float32(0.7)}  # torchreid stores rank1 as a numpy scalar
    path = tmp_path / "osnet_x0_25_msmt17.pth.tar"
    torch.save(ckpt, path)

    dst = build_model("osnet_x0_25", seed=2, pretrained_path=path)  # no classifier: its keys are dropped
    assert dst.model_id == "osnet_x0_25:osnet_x0_25_msmt17.pth.tar"
    x = torch.randn(2, 3, 256, 128)
    torch.testing.assert_close(_features(dst, x), _features(src, x))
    report = load_weights(dst, path)
    assert set(report.dropped) == {"classifier.weight", "classifier.bias"}
    assert report.loaded == len(dst.backbone.state_dict()) and report.not_loaded == ()


def test_reid_survey_style_and_other_classifier_size(tmp_path):
    src = build_model("tiny_cnn", num_classes=10, seed=1)
    path = tmp_path / "agw_like.pth"
    torch.save({"model": src.backbone.state_dict()}, path)
    dst = build_model("tiny_cnn", num_classes=7, seed=2)
    report = load_weights(dst, path)
    assert report.dropped == ("classifier.weight", "classifier.bias")
    assert set(report.not_loaded) == {"classifier.weight", "classifier.bias"}
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(_features(dst, x), _features(src, x))


def test_safetensors_round_trip_with_metadata(tmp_path):
    src = build_model("tiny_cnn", seed=1, model_id="tiny-test", input_size=(64, 32))
    path = tmp_path / "tiny.safetensors"
    save_safetensors(src, path, {"note": "unit test"})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["note"] == "unit test" and meta["model_id"] == "tiny-test"
    assert json.loads(meta["input_size"]) == [64, 32] and meta["feature_layer"] == "fc"
    torch.testing.assert_close(torch.tensor(json.loads(meta["std"])), torch.tensor(IMAGENET_STD))
    dst = build_model("tiny_cnn", seed=2, pretrained_path=path)
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(_features(dst, x), _features(src, x))
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_safetensors(src, tmp_path / "bad.safetensors", {"epoch": 3})


def test_in_memory_whole_model_state_dict_and_old_checkpoints():
    src = build_model("tiny_cnn", seed=1)
    dst = build_model("tiny_cnn", seed=2)
    load_weights(dst, src.state_dict())  # "backbone." prefixed keys of a whole ReIDModel
    x = torch.randn(1, 3, 64, 32)
    torch.testing.assert_close(_features(dst, x), _features(src, x))
    # Checkpoints from torch < 0.4.1 have no BatchNorm num_batches_tracked counters.
    old = {k: v for k, v in src.backbone.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_weights(build_model("tiny_cnn"), old)


def test_mismatched_weights_raise_listing_keys():
    model = build_model("osnet_x0_25", seed=0)
    state = model.backbone.state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("conv5.")}
    with pytest.raises(ValueError) as err:
        load_weights(model, missing)
    msg = str(err.value)
    assert "missing keys (5): conv5.conv.weight, conv5.bn.weight" in msg and "strict=False" in msg

    extra = dict(state) | {f"head.{i}.weight": torch.zeros(1) for i in range(12)}
    with pytest.raises(ValueError, match=r"unexpected keys \(12\): head\.0\.weight, .*\(2 more\)"):
        load_weights(model, extra)

    wrong_width = build_model("osnet_x0_5", seed=0).backbone.state_dict()
    with pytest.raises(ValueError, match=r"shape mismatches \(\d+\): conv1\.conv\.weight \(checkpoint "
                                         r"\(32, 3, 7, 7\), model \(16, 3, 7, 7\)\)"):
        load_weights(model, wrong_width)

    before = model.backbone.conv1.conv.weight.clone()
    partial = dict(missing) | {"conv1.conv.weight": torch.ones_like(before)}
    report = load_weights(model, partial, strict=False)
    assert torch.equal(model.backbone.conv1.conv.weight, torch.ones_like(before))
    assert "conv5.conv.weight" in report.not_loaded and report.loaded == len(missing)


def test_pickled_module_needs_allow_pickle(tmp_path):
    src = build_model("tiny_cnn", seed=1)
    path = tmp_path / "whole_module.pth"
    torch.save(src.backbone, path)
    dst = build_model("tiny_cnn", seed=2)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_weights(dst, path)
    load_weights(dst, path, allow_pickle=True)
    x = torch.randn(1, 3, 64, 32)
    torch.testing.assert_close(_features(dst, x), _features(src, x))


def test_bad_sources(tmp_path):
    model = build_model("tiny_cnn")
    with pytest.raises(FileNotFoundError, match="not_there.pth"):
        load_weights(model, tmp_path / "not_there.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read"):
        load_weights(model, junk)
    bad_st = tmp_path / "junk.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="could not read .* as a safetensors file"):
        load_weights(model, bad_st)
    with pytest.raises(ValueError, match="entries \\['epoch'\\] are not tensors"):
        load_weights(model, {"epoch": 3})
    with pytest.raises(TypeError, match="source must be"):
        load_weights(model, 42)


# --------------------------------------------------------------------------- registry


def test_registry_names_alias_seed_and_errors():
    with pytest.raises(ValueError, match="unknown model name 'resnet18'.*osnet_x1_0.*agw_r50_nl.*tiny_cnn"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("tiny_cnn", num_classes=-1)
    alias = build_model("resnet50_nl", seed=0)
    assert isinstance(alias.backbone, AGW) and alias.model_id == "agw_r50_nl"
    assert alias.feature_layer == "bnneck" and alias.input_size == (256, 128)
    assert isinstance(build_model("osnet_x0_5").backbone, OSNet)

    rng_before = torch.get_rng_state()
    a, b = build_model("tiny_cnn", seed=7), build_model("tiny_cnn", seed=7)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = build_model("tiny_cnn", seed=8)
    assert not torch.equal(a.backbone.fc.weight, c.backbone.fc.weight)


@pytest.mark.gpu
def test_models_on_cuda_match_cpu():
    """fp32 on CUDA matches CPU (up to TF32 convolutions); bf16 autocast with channels_last
    stays close; input gradients are finite."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, 256, 128, generator=gen)
    for name in MODEL_NAMES:
        model = build_model(name, seed=0)
        randomise_bn_stats(model.backbone, gen)
        ref = _features(model, x)
        model.cuda()
        xc = x.cuda()
        fp32 = _features(model, xc).cpu()
        assert ((fp32 - ref).norm() / ref.norm()) < 1e-2, name
        model.to(memory_format=torch.channels_last)
        xg = xc.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(xg)
        assert out.dtype == torch.float32
        assert ((out.detach().cpu() - ref).norm() / ref.norm()) < 5e-2, name
        (grad,) = torch.autograd.grad(out.square().sum(), xg)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name
