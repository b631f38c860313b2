"""ONNX import (pixelfade_fast.models.onnx): zoo exports and hand-built graphs against onnxruntime.

onnxruntime is the reference for every graph; zoo exports are also compared with the torch model they came
from. Hand-built graphs cover what torch's exporter does not emit (attribute forms of older opsets, Gemm
flags, [N, C] BatchNormalization, opset-19 AveragePool, Slice clamping, ...).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from helpers import assert_close_report
from pixelfade_fast import FadeConfig, protect
from pixelfade_fast.models import build_model
from pixelfade_fast.models.onnx import OnnxInfo, export_onnx, load_onnx
from pixelfade_fast.models.onnx.module import OnnxGraphModule

# ||ours - reference|| / ||reference|| bounds (float32 on both sides; exported models sum over many layers).
RTOL = {
    "export_vs_ort": 1e-4,
    "export_vs_torch": 1e-4,
    "export_grad_vs_torch": 1e-3,  # gradients pass twice through the network
    "graph_vs_ort": 1e-5,
}
ZOO_SIZE = (64, 32)  # small inputs keep the ResNet-50 AGW export fast
BATCHES = (1, 3)  # two batch sizes through one dynamic-batch graph


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Small graphs run faster on one thread than on two contended ones."""


def _ort(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # Graph rewrites off: onnxruntime then evaluates the nodes as written.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_ort(session: ort.InferenceSession, x: torch.Tensor) -> torch.Tensor:
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def _images(batch: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- zoo models exported by torch

EXPORTS = [  # (model name, opset, fold_batchnorm)
    ("tiny_cnn", 11, True),
    ("tiny_cnn", 13, False),
    ("tiny_cnn", 19, True),
    ("osnet_x0_25", 17, True),
    ("osnet_x0_25", 19, False),
    ("agw_r50_nl", 13, False),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(zoo model, path of its ONNX export) per EXPORTS entry, exported once for the module."""
    cache: dict = {}

    def get(name: str, opset: int, fold: bool):
        if (name, opset, fold) not in cache:
            model = build_model(name, seed=3, input_size=ZOO_SIZE)
            # Non-trivial BatchNorm statistics, so that folding or not folding them matters.
            generator = torch.Generator().manual_seed(4)
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.running_mean.normal_(0.0, 0.1, generator=generator)
                    module.running_var.uniform_(0.5, 1.5, generator=generator)
            path = tmp_path_factory.mktemp("onnx") / f"{name}_{opset}_{int(fold)}.onnx"
            export_onnx(model, path, opset=opset, fold_batchnorm=fold)
            cache[name, opset, fold] = model, path
        return cache[name, opset, fold]

    return get


def _count(module: nn.Module, kind: type) -> int:
    return sum(type(m) is kind for m in module.modules())


@pytest.mark.parametrize("name,opset,fold", EXPORTS)
def test_zoo_export_matches_onnxruntime_and_torch(exported, name, opset, fold):
    model, path = exported(name, opset, fold)
    module, info = load_onnx(path)
    assert isinstance(module, OnnxGraphModule)
    assert info.opset == opset and info.input_size == ZOO_SIZE and info.batch is None
    assert info.feature_dim == model.feature_dim
    session = _ort(path)
    for batch in BATCHES:
        x = _images(batch, ZOO_SIZE, seed=batch)
        ours = module(x)
        assert ours.shape == (batch, model.feature_dim)
        assert_close_report(ours, _run_ort(session, x), RTOL["export_vs_ort"], f"{name} opset {opset} batch {batch}")
        assert_close_report(ours, model(x), RTOL["export_vs_torch"], f"{name} vs torch, batch {batch}")

    # Real modules with parameters: BatchNorm2d only when the export kept it; Conv2d always.
    assert _count(module, nn.Conv2d) > 0
    assert (_count(module, nn.BatchNorm2d) > 0) == (not fold)
    assert all(isinstance(p, nn.Parameter) for p in module.parameters()) and len(list(module.parameters())) > 0

    x = _images(2, ZOO_SIZE, seed=7).requires_grad_(True)
    module(x).square().sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    model(x_ref).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert_close_report(x.grad, x_ref.grad, RTOL["export_grad_vs_torch"], f"{name} input gradient")


class _Normalised(nn.Module):
    """What protect() needs besides the network: input_size, mean and std."""

    def __init__(self, network: nn.Module, info: OnnxInfo):
        super().__init__()
        self.network = network
        self.input_size = info.input_size
        self.register_buffer("mean", torch.tensor(info.mean))
        self.register_buffer("std", torch.tensor(info.std))
        self.eval()  # protect() restores the mode it found; an imported graph refuses train(True)

    def forward(self, x):
        return self.network(x)


@pytest.mark.parametrize("name,opset,fold", [EXPORTS[0], EXPORTS[3]])
def test_protect_runs_on_an_imported_model(exported, name, opset, fold):
    model, path = exported(name, opset, fold)
    module, info = load_onnx(path)
    assert info.mean == pytest.approx(model.mean.view(3).tolist()) and info.std == pytest.approx(model.std.view(3).tolist())
    images = torch.rand(2, 3, *ZOO_SIZE, generator=torch.Generator().manual_seed(1))
    config = FadeConfig(steps=6, init_steps=2, final_steps=2, finish_steps=0)
    result = protect(_Normalised(module, info), images, config, seed=11, backend="reference")
    assert torch.isfinite(result.images).all()
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    assert not torch.equal(result.images, images)


def test_fx_conv_bn_fusion_applies_to_an_import(exported):
    from torch.fx.experimental.optimization import fuse

    _, path = exported("tiny_cnn", 13, False)
    module, _ = load_onnx(path)
    fused = fuse(module, no_trace=True)
    assert _count(module, nn.BatchNorm2d) == 4 and _count(fused, nn.BatchNorm2d) == 0
    x = _images(2, ZOO_SIZE, seed=5)
    assert_close_report(fused(x), module(x), RTOL["export_vs_torch"], "fused vs unfused")


@pytest.mark.parametrize("name", ["reshape_head_shape_chain_13", "constant_of_shape_dynamic", "avgpool19_dilated"])
def test_torch_compile_traces_the_whole_graph_with_a_dynamic_batch(tmp_path, name):
    # Shape arithmetic on the batch size stays in Python ints, so dynamo needs no graph break (fullgraph).
    opset, nodes, initializers = GRAPHS[name]
    module, _ = load_onnx(_save(_model(nodes, opset=opset, initializers=initializers), tmp_path))
    compiled = torch.compile(module, backend="eager", fullgraph=True, dynamic=True)
    for batch in (1, 3, 4):
        x = _images(batch, IMAGE, seed=batch)
        assert_close_report(compiled(x), module(x), RTOL["graph_vs_ort"], f"{name} compiled, batch {batch}")


def test_fixed_batch_export_runs_any_batch(tmp_path):
    model = build_model("tiny_cnn", seed=3, input_size=ZOO_SIZE)
    path = tmp_path / "fixed.onnx"
    export_onnx(model, path, opset=17, dynamic_batch=False)
    module, info = load_onnx(path)
    assert info.batch == 2  # export_onnx traces with a batch of 2
    assert not module.training  # like the GraphModule inside it: eval only
    x = _images(5, ZOO_SIZE, seed=2)
    assert_close_report(module(x), model(x), RTOL["export_vs_torch"], "fixed batch of 2 run on 5 images")


def test_imported_module_stays_in_eval_mode(exported):
    _, path = exported("tiny_cnn", 11, True)
    module, _ = load_onnx(path)
    module.eval()
    with pytest.raises(RuntimeError, match="inference-mode"):
        module.train()
    assert not module.training


# --------------------------------------------------------------------------- hand-built graphs

IMAGE = (5, 6)  # H, W of hand-built graphs' inputs


def _model(nodes, *, opset: int, initializers=(), out_shape=None, in_shape=("B", 3, *IMAGE),
           metadata: dict | None = None, in_type=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", in_type, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="pixelfade-tests")
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def _save(model, tmp_path, name="graph.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _i64(*values):
    return np.asarray(values, dtype=np.int64)


INT_MAX = np.iinfo(np.int64).max
INT_MIN = np.iinfo(np.int64).min


def _flat_head() -> list:
    """x [B, 3, 5, 6] -> Flatten -> f [B, 90]."""
    return [helper.make_node("Flatten", ["x"], ["f"], axis=1)]


# name -> (opset, nodes, initializers); every graph maps x [B, 3, 5, 6] to y.
GRAPHS = {
    # Gemm flags (the exporter only writes transB=1, alpha=beta=1).
    "gemm_transB_alpha_beta": (13, _flat_head() + [
        helper.make_node("Gemm", ["f", "w", "c"], ["y"], transB=1, alpha=0.7, beta=1.3)],
        [("w", _f32(4, 90)), ("c", _f32(4, seed=1))]),
    "gemm_row_bias": (11, _flat_head() + [
        helper.make_node("Gemm", ["f", "w", "c"], ["y"], alpha=2.0)], [("w", _f32(90, 4)), ("c", _f32(1, 4))]),
    "gemm_no_bias_transA": (13, _flat_head() + [
        helper.make_node("Transpose", ["f"], ["ft"], perm=[1, 0]),
        helper.make_node("Gemm", ["ft", "w"], ["y"], transA=1, transB=1)], [("w", _f32(4, 90))]),
    "matmul_add_head": (17, _flat_head() + [
        helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
        [("w", _f32(90, 7)), ("b", _f32(7))]),
    # Reshape heads built from the dynamic batch size, before (11) and after (13) Unsqueeze took axes as input.
    "reshape_head_shape_chain_11": (11, [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
        helper.make_node("Concat", ["n1", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["p", "shape"], ["y"])],
        [("zero", np.asarray(0, np.int64)), ("minus_one", _i64(-1))]),
    "reshape_head_shape_chain_13": (13, [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Gather", ["s", "rest"], ["chw"], axis=0),
        helper.make_node("ReduceProd", ["chw"], ["d"], keepdims=1),
        helper.make_node("Concat", ["n1", "d"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [("zero", np.asarray(0, np.int64)), ("axes0", _i64(0)), ("rest", _i64(1, 2, 3))]),
    "reshape_zero_copies_dim": (14, [helper.make_node("Reshape", ["x", "shape"], ["y"])],
                                [("shape", _i64(0, -1))]),
    "flatten_axis_2": (13, [helper.make_node("Flatten", ["x"], ["y"], axis=2)], []),
    "size_and_div_by_batch": (13, [
        helper.make_node("Size", ["x"], ["numel"]),
        helper.make_node("Cast", ["numel"], ["numel_f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["x", "numel_f"], ["y"])], []),
    # BatchNormalization on the [N, C] embedding (onnx2torch 1.5.15 rejects it).
    "batchnorm_on_embedding": (15, _flat_head() + [
        helper.make_node("BatchNormalization", ["f", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3)],
        [("scale", _f32(90)), ("bias", _f32(90, seed=1)), ("mean", _f32(90, seed=2)),
         ("var", np.abs(_f32(90, seed=3)) + 0.5)]),
    "batchnorm_4d": (11, [
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"])],
        [("scale", _f32(3)), ("bias", _f32(3, seed=1)), ("mean", _f32(3, seed=2)),
         ("var", np.abs(_f32(3, seed=3)) + 0.5)]),
    "instance_norm": (11, [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)],
                      [("s", _f32(3)), ("b", _f32(3, seed=1))]),
    # Pooling, opset 19 AveragePool (dilations; onnx2torch 1.5.15 fails on it) and the ceil_mode rule.
    **{f"avgpool19_ceil{c}_incl{i}_pads{''.join(map(str, p))}": (19, [
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2], pads=p,
                         ceil_mode=c, count_include_pad=i)], [])
       for c in (0, 1) for i in (0, 1) for p in ([0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 1])},
    "avgpool19_dilated": (19, [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2],
                                                dilations=[2, 1], pads=[1, 1, 0, 1], count_include_pad=1)], []),
    "avgpool11_same_upper": (11, [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                   auto_pad="SAME_UPPER")], []),
    "maxpool_ceil_pads": (12, [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                pads=[1, 1, 1, 1], ceil_mode=1)], []),
    "maxpool_asymmetric_dilated": (13, [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3],
                                                         pads=[0, 2, 1, 0], dilations=[2, 1], strides=[1, 2])], []),
    "global_max_pool": (13, [helper.make_node("GlobalMaxPool", ["x"], ["y"])], []),
    # Conv variants.
    "conv_groups_dilation_asym_pads": (13, [helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], group=3, dilations=[1, 2], strides=[2, 1], pads=[0, 1, 2, 1])],
        [("w", _f32(6, 1, 3, 3)), ("b", _f32(6, seed=1))]),
    "conv_same_lower": (11, [helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
                        [("w", _f32(4, 3, 2, 2))]),
    # Clip in its opset-11 form: min and max are optional inputs.
    "clip11_min_max": (11, [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                       [("lo", np.float32(-0.5)), ("hi", np.float32(0.7))]),
    "clip11_max_only": (11, [helper.make_node("Clip", ["x", "", "hi"], ["y"])], [("hi", np.float32(0.2))]),
    "clip13_min_only": (13, [helper.make_node("Clip", ["x", "lo"], ["y"])], [("lo", np.float32(0.1))]),
    # Squeeze / Unsqueeze / ReduceMean on both sides of the attribute -> input change.
    "squeeze_unsqueeze_reduce_12": (12, [
        helper.make_node("ReduceMean", ["x"], ["r"], axes=[2], keepdims=1),
        helper.make_node("Squeeze", ["r"], ["s"], axes=[2]),
        helper.make_node("Unsqueeze", ["s"], ["y"], axes=[-1, 1])], []),
    "squeeze_unsqueeze_reduce_13": (13, [
        helper.make_node("ReduceMean", ["x"], ["r"], axes=[2], keepdims=1),
        helper.make_node("Squeeze", ["r", "a2"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "a_m1_1"], ["y"])], [("a2", _i64(2)), ("a_m1_1", _i64(-1, 1))]),
    "squeeze_unsqueeze_reduce_18": (18, [
        helper.make_node("ReduceMean", ["x", "a2"], ["r"], keepdims=1),
        helper.make_node("Squeeze", ["r", "a2"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "a_m1_1"], ["y"])], [("a2", _i64(2)), ("a_m1_1", _i64(-1, 1))]),
    "reducesum_13_axes_input": (13, [helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], [("a", _i64(1, -1))]),
    "reducesum_11_axes_attr": (11, [helper.make_node("ReduceSum", ["x"], ["y"], axes=[1, -1], keepdims=0)], []),
    "reducemax_18_noop": (18, [helper.make_node("ReduceMax", ["x"], ["y"], noop_with_empty_axes=1)], []),
    "reduce_l2_17": (17, [helper.make_node("ReduceL2", ["x"], ["y"], axes=[2, 3])], []),
    "reduce_l2_18": (18, [helper.make_node("ReduceL2", ["x", "a"], ["y"])], [("a", _i64(2, 3))]),
    "lp_normalization": (13, _flat_head() + [helper.make_node("LpNormalization", ["f"], ["y"], axis=1, p=2)], []),
    # Pad: pads as input (11), axes input (18), modes.
    "pad11_constant": (11, [helper.make_node("Pad", ["x", "pads", "v"], ["y"], mode="constant")],
                       [("pads", _i64(0, 0, 1, 2, 0, 0, 3, 0)), ("v", np.float32(0.5))]),
    "pad13_reflect": (13, [helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")],
                      [("pads", _i64(0, 0, 2, 1, 0, 0, 1, 3))]),
    "pad18_edge_axes": (18, [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], mode="edge")],
                        [("pads", _i64(1, 2, 0, 1)), ("axes", _i64(-1, 2))]),
    "pad_negative_crop": (13, [helper.make_node("Pad", ["x", "pads"], ["y"])], [("pads", _i64(0, 0, -1, 0, 0, 0, 1, -2))]),
    # Slice: negative starts, INT_MAX / INT_MIN ends, negative steps.
    "slice_int_max_end": (13, [helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])],
                          [("st", _i64(1, -4)), ("en", _i64(INT_MAX, -1)), ("ax", _i64(2, 3))]),
    "slice_negative_step": (13, [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
                            [("st", _i64(-1, 4)), ("en", _i64(INT_MIN, 0)), ("ax", _i64(3, 2)), ("sp", _i64(-2, -1))]),
    "slice_default_axes_steps": (11, [helper.make_node("Slice", ["x", "st", "en"], ["y"])],
                                 [("st", _i64(0, 1)), ("en", _i64(INT_MAX, 3))]),
    # Split: attribute (11), input (13), num_outputs (18).
    "split11_attr": (11, [helper.make_node("Split", ["x"], ["a", "b"], axis=3, split=[2, 4]),
                          helper.make_node("Mul", ["a", "a"], ["a2"]),
                          helper.make_node("Concat", ["b", "a2"], ["y"], axis=3)], []),
    "split13_input": (13, [helper.make_node("Split", ["x", "sizes"], ["a", "b", "c"], axis=1),
                           helper.make_node("Sub", ["a", "c"], ["d"]),
                           helper.make_node("Concat", ["d", "b"], ["y"], axis=1)], [("sizes", _i64(1, 1, 1))]),
    "split18_num_outputs": (18, [helper.make_node("Split", ["x"], ["a", "b"], axis=2, num_outputs=2),
                                 helper.make_node("ReduceSum", ["b", "a2"], ["s"], keepdims=1),
                                 helper.make_node("Add", ["a", "s"], ["y"])], [("a2", _i64(2))]),
    # Activations and element-wise math.
    "activations": (14, [
        helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.1),
        helper.make_node("PRelu", ["a", "slope"], ["b"]),
        helper.make_node("HardSigmoid", ["b"], ["c"], alpha=0.3, beta=0.4),
        helper.make_node("HardSwish", ["x"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Tanh", ["e"], ["f"]),
        helper.make_node("Sigmoid", ["x"], ["g"]),
        helper.make_node("Elu", ["x"], ["h"], alpha=0.5),
        helper.make_node("Softplus", ["h"], ["i"]),
        helper.make_node("Selu", ["x"], ["j"]),
        helper.make_node("Sum", ["c", "f", "g", "i", "j"], ["y"])],
        [("slope", _f32(3, 1, 1))]),
    "math": (13, [
        helper.make_node("Abs", ["x"], ["a"]),
        helper.make_node("Add", ["a", "one"], ["a1"]),
        helper.make_node("Sqrt", ["a1"], ["b"]),
        helper.make_node("Log", ["b"], ["c"]),
        helper.make_node("Exp", ["c"], ["d"]),
        helper.make_node("Pow", ["d", "three"], ["e"]),
        helper.make_node("Reciprocal", ["e"], ["f"]),
        helper.make_node("Neg", ["f"], ["g"]),
        helper.make_node("Max", ["g", "x", "c"], ["h"]),
        helper.make_node("Min", ["h", "b"], ["i"]),
        helper.make_node("Sub", ["i", "x"], ["j"]),
        helper.make_node("Div", ["j", "a1"], ["k"]),
        helper.make_node("Mean", ["k", "x"], ["m"]),
        helper.make_node("Floor", ["m"], ["n"]),
        helper.make_node("Ceil", ["m"], ["o"]),
        helper.make_node("Sign", ["m"], ["p"]),
        helper.make_node("Mul", ["n", "o"], ["q"]),
        helper.make_node("Sum", ["q", "p", "m"], ["y"])],
        [("one", np.float32(1.0)), ("three", np.float32(3.0))]),
    "softmax11_coerced": (11, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], []),
    "softmax13_axis": (13, [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], []),
    "where_equal_greater": (16, [
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("Equal", ["pos", "t"], ["same"]),
        helper.make_node("Not", ["same"], ["neg"]),
        helper.make_node("Where", ["neg", "x", "half"], ["y"])],
        [("zero", np.float32(0.0)), ("t", np.bool_(True)), ("half", np.float32(0.5))]),
    # Tensor plumbing.
    "transpose_expand_tile": (13, [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 2, 1]),
        helper.make_node("ReduceMean", ["t"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Expand", ["m", "shape"], ["e"]),
        helper.make_node("Tile", ["e", "reps"], ["y"])],
        [("shape", _i64(1, 2, 1, 1)), ("reps", _i64(1, 1, 1, 2))]),
    "gather_negative_indices": (13, [helper.make_node("Gather", ["x", "idx"], ["y"], axis=3)],
                                [("idx", _i64(-1, 0, 2, -3))]),
    "gather_scalar_index": (13, [helper.make_node("Gather", ["x", "i"], ["g"], axis=1),
                                 helper.make_node("Unsqueeze", ["g", "a1"], ["y"])],
                            [("i", np.asarray(-2, np.int64)), ("a1", _i64(1))]),
    "constant_of_shape_dynamic": (13, [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["ones"],
                         value=numpy_helper.from_array(np.asarray([2.0], np.float32))),
        helper.make_node("Constant", [], ["c"], value_float=0.25),
        helper.make_node("Mul", ["ones", "c"], ["h"]),
        helper.make_node("Dropout", ["x"], ["dx"]),
        helper.make_node("Identity", ["dx"], ["ix"]),
        helper.make_node("Add", ["ix", "h"], ["y"])], []),
    "cast_round_trip": (13, [helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
                             helper.make_node("Cast", ["d"], ["y"], to=TensorProto.FLOAT)], []),
    "opset22": (22, [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                     helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[2, 2], ceil_mode=1,
                                      strides=[2, 2])], [("w", _f32(2, 3, 3, 3))]),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_hand_built_graph_matches_onnxruntime(tmp_path, name):
    opset, nodes, initializers = GRAPHS[name]
    path = _save(_model(nodes, opset=opset, initializers=initializers), tmp_path)
    module, info = load_onnx(path)
    assert info.opset == opset and info.input_size == IMAGE and info.producer == "pixelfade-tests"
    session = _ort(path)
    for batch in (1, 2):
        x = _images(batch, IMAGE, seed=batch + 10)
        reference = _run_ort(session, x)
        ours = module(x)
        assert ours.dim() == 2 and ours.numel() == reference.numel()
        assert_close_report(ours, reference.reshape(ours.shape), RTOL["graph_vs_ort"], f"{name}, batch {batch}")


def test_gemm_and_batchnorm_with_constant_weights_become_modules(tmp_path):
    opset, nodes, initializers = GRAPHS["batchnorm_on_embedding"]
    module, _ = load_onnx(_save(_model(nodes, opset=opset, initializers=initializers), tmp_path))
    assert _count(module, nn.BatchNorm1d) == 1
    opset, nodes, initializers = GRAPHS["gemm_transB_alpha_beta"]
    module, _ = load_onnx(_save(_model(nodes, opset=opset, initializers=initializers), tmp_path))
    assert _count(module, nn.Linear) == 1


def test_metadata_gives_size_and_normalisation_for_dynamic_spatial_dims(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"])]
    meta = {"input_size": "[32, 16]", "mean": "[0.5, 0.4, 0.3]", "std": "[0.2, 0.25, 0.3]"}
    module, info = load_onnx(_save(_model(nodes, opset=13, in_shape=("B", 3, "H", "W"), metadata=meta), tmp_path))
    assert info.input_size == (32, 16) and info.mean == (0.5, 0.4, 0.3) and info.std == (0.2, 0.25, 0.3)
    assert info.feature_dim == 3  # from shape inference: [B, 3, 1, 1]
    _, bare = load_onnx(_save(_model(nodes, opset=13, in_shape=("B", 3, "H", "W")), tmp_path, "bare.onnx"))
    assert bare.input_size is None and bare.mean is None and bare.std is None
    x = _images(2, (7, 9), seed=0)  # dynamic spatial dims take any size
    assert_close_report(module(x), x.mean(dim=(2, 3)), RTOL["graph_vs_ort"], "global average pool")


@pytest.mark.parametrize("meta,match", [
    ({"mean": "[0.5, 0.4]"}, "JSON list of 3 finite numbers"),
    ({"std": "[0.2, 0.0, 0.3]"}, "std' must be positive"),
    ({"mean": "[123.7, 116.3, 103.5]"}, "looks like 0-255"),
    ({"input_size": "[32, 16]"}, "contradicts the graph input"),
])
def test_bad_metadata_is_refused(tmp_path, meta, match):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"])]
    with pytest.raises(ValueError, match=match):
        load_onnx(_save(_model(nodes, opset=13, metadata=meta), tmp_path))


# --------------------------------------------------------------------------- errors users can cause

def test_unsupported_op_names_op_node_opset_and_supported_ops(tmp_path):
    nodes = [helper.make_node("Hardmax", ["x"], ["y"], name="head/hardmax")]
    with pytest.raises(ValueError, match=r"unsupported ONNX op Hardmax \(node 'head/hardmax', opset 13\); "
                                         r"supported ops .*AveragePool, BatchNormalization"):
        load_onnx(_save(_model(nodes, opset=13), tmp_path))


def test_op_of_another_domain_is_unsupported(tmp_path):
    model = _model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft", name="g")], opset=13)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(ValueError, match=r"unsupported ONNX op com\.microsoft\.Gelu \(node 'g'"):
        load_onnx(_save(model, tmp_path))


def test_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"\x80\x02}q\x00this is a pickled checkpoint, not an ONNX model")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        load_onnx(path)


def test_missing_onnx_package_is_explained(tmp_path, monkeypatch):
    path = _save(_model([helper.make_node("Relu", ["x"], ["y"])], opset=13), tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` sees when it is not installed
    with pytest.raises(ImportError, match=r"needs the 'onnx' package: pip install onnx"):
        load_onnx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        load_onnx(tmp_path / "absent.onnx")


@pytest.mark.parametrize("in_shape,in_type,match", [
    (("B", 90), TensorProto.FLOAT, r"shape \['\?', 90\]; an image batch \[B, 3, H, W\] \(4-D"),
    (("B", 1, 5, 6), TensorProto.FLOAT, r"shape \['\?', 1, 5, 6\]; an image batch"),
    (("B", 3, 5, 6), TensorProto.FLOAT16, "element type FLOAT16; a float32 input is needed"),
])
def test_input_that_is_not_a_float_image_batch(tmp_path, in_shape, in_type, match):
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    with pytest.raises(ValueError, match=match):
        load_onnx(_save(_model(nodes, opset=13, in_shape=in_shape, in_type=in_type), tmp_path))


def test_opset_older_than_11_is_refused(tmp_path):
    # Clip in its opset-6 form (min/max attributes).
    nodes = [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.5)]
    with pytest.raises(ValueError, match=r"opset 6 is not supported \(supported: 11 to 22\)"):
        load_onnx(_save(_model(nodes, opset=6), tmp_path))


def test_wrong_input_size_at_run_time(tmp_path):
    module, _ = load_onnx(_save(_model([helper.make_node("Relu", ["x"], ["y"])], opset=13), tmp_path))
    with pytest.raises(ValueError, match=r"takes images of size \(5, 6\) \(H, W\), got \(6, 5\)"):
        module(torch.zeros(1, 3, 6, 5))


def test_weights_computed_at_run_time_are_refused_where_constants_are_needed(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "st", "en"], ["p"]),
             helper.make_node("Pad", ["x", "p"], ["y"])]
    with pytest.raises(ValueError, match=r"Pad node .*pads \(input 1\) must be a constant"):
        load_onnx(_save(_model(nodes, opset=13, initializers=[("st", _i64(0)), ("en", _i64(8))]), tmp_path))
