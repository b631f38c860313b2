"""load_onnx: an ONNX file -> (differentiable torch module, OnnxInfo)."""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from .builder import GraphBuilder, OpContext
from .info import OnnxInfo, read_metadata
from .module import FixedBatch, OnnxGraphModule, check_input, features_2d
from .ops import OPS
from .proto import (DEFAULT_DOMAINS, MAX_OPSET, MIN_OPSET, default_opset, import_onnx, read_model, static_shapes,
                    to_torch)
from .values import Const, Dims, Dyn

EXAMPLE_BATCH = 1  # the example batch the graph is run on while it is built (gives ranks; checks it runs)
DEFAULT_SIZE = (256, 128)  # example (H, W) when neither the graph nor its metadata fixes the input size


def _unsupported(node, opset: int) -> ValueError:
    domain = "" if node.domain in DEFAULT_DOMAINS else f"{node.domain}."
    return ValueError(f"unsupported ONNX op {domain}{node.op_type} (node {node.name!r}, opset {opset}); "
                      f"supported ops (default domain): {', '.join(sorted(OPS))}")


def _graph_input(model, path: str):
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]  # IR < 4 lists initializers as inputs
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected a graph with one image input, found {len(inputs)}: "
                         f"{[i.name for i in inputs]}")
    tensor_type = inputs[0].type.tensor_type
    onnx = import_onnx()
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"{path}: the graph input {inputs[0].name!r} has element type "
                         f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}; a float32 input is needed")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (None, 3):
        raise ValueError(f"{path}: the graph input {inputs[0].name!r} has shape "
                         f"{['?' if d is None else d for d in dims]}; an image batch [B, 3, H, W] (4-D, 3 "
                         f"channels) is needed")
    return inputs[0], dims


def _build(model, opset: int, shapes, input_proto, dims, example_size: tuple[int, int], path: str
           ) -> OnnxGraphModule:
    builder = GraphBuilder(opset)
    graph = builder.graph
    example = torch.randn(dims[0] or EXAMPLE_BATCH, 3, *example_size, generator=torch.Generator().manual_seed(0))
    placeholder = builder.emit("placeholder", "x", example=example)
    builder.input_node = placeholder
    checked = builder.emit("call_function", check_input, (placeholder, (dims[2], dims[3])))
    builder.values[input_proto.name] = Dyn(checked, shapes.get(input_proto.name, tuple(dims)))
    for initializer in model.graph.initializer:
        tensor = to_torch(initializer)
        builder.const_names[id(tensor)] = initializer.name
        builder.values[initializer.name] = Const(tensor)

    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS or node.op_type not in OPS:
            raise _unsupported(node, opset)
        missing = [name for name in node.input if name and name not in builder.values]
        if missing:
            raise ValueError(f"{path}: node {node.name!r} ({node.op_type}) reads {missing}, which no earlier "
                             f"node produces (the graph is not topologically sorted or is incomplete)")
        ctx = OpContext(builder, node, [builder.values[name] if name else None for name in node.input])
        try:
            results = OPS[node.op_type](ctx)
        except (RuntimeError, TypeError, IndexError) as err:  # torch refused the folded computation
            raise ctx.error(f"could not be imported: {err}") from err
        results = results if isinstance(results, list) else [results]
        for name, value in zip(node.output, results):
            if name:
                if isinstance(value, Dyn):
                    value = Dyn(value.node, shapes.get(name))
                builder.values[name] = value

    output_name = model.graph.output[0].name
    output = builder.values.get(output_name)
    if not isinstance(output, Dyn):
        kind = "a constant" if isinstance(output, (Const, Dims)) else "not computed"
        raise ValueError(f"{path}: the graph output {output_name!r} is {kind}; it must depend on the image")
    rank = builder.example(output).dim()
    if rank < 2:
        raise ValueError(f"{path}: the graph output {output_name!r} has rank {rank}; features [B, D] are needed")
    graph.output(output.node if rank == 2 else builder.emit("call_function", features_2d, (output.node,)))
    builder.examples.clear()
    draft = OnnxGraphModule(builder.root, graph)  # dead-code elimination needs an owning module
    draft.graph.eliminate_dead_code()
    draft.graph.lint()
    # Built again so that only the submodules and buffers the remaining nodes use are copied over.
    return OnnxGraphModule(draft, draft.graph, class_name="OnnxModel").train(False)


def load_onnx(path: str | os.PathLike) -> tuple[nn.Module, OnnxInfo]:
    """Import an ONNX Re-ID model as a differentiable torch module.

    The module maps a float32 batch [B, 3, H, W] in the model's normalised input space to the graph's first
    output (a graph with several outputs contributes only the first) as [B, D] features; outputs such as
    [B, D, 1, 1] are flattened. It runs in eval semantics and is differentiable with respect to its input.
    Graphs with a dynamic batch axis give a torch.fx GraphModule; a graph exported for a fixed batch size b
    gives a module that runs any batch in chunks of b. See the package docstring for the design.
    """
    path = os.fspath(path)
    model = read_model(path)
    opset = default_opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"{path}: opset {opset} is not supported (supported: {MIN_OPSET} to {MAX_OPSET}); "
                         f"re-export the model with an opset in that range (torch.onnx.export(..., "
                         f"opset_version=17))")
    input_proto, dims = _graph_input(model, path)
    meta_size, mean, std = read_metadata({p.key: p.value for p in model.metadata_props}, path)
    static_size = (dims[2], dims[3]) if dims[2] and dims[3] else None
    if static_size and meta_size and static_size != meta_size:
        raise ValueError(f"{path}: metadata input_size {list(meta_size)} contradicts the graph input's "
                         f"size {list(static_size)}")
    example_size = (dims[2] or (meta_size or DEFAULT_SIZE)[0], dims[3] or (meta_size or DEFAULT_SIZE)[1])
    shapes = static_shapes(model)
    graph_module = _build(model, opset, shapes, input_proto, dims, example_size, path)
    module: nn.Module = graph_module if dims[0] is None else FixedBatch(graph_module, dims[0])
    output_shape = shapes.get(model.graph.output[0].name)
    static_features = output_shape is not None and len(output_shape) >= 2 and all(output_shape[1:])
    feature_dim = math.prod(output_shape[1:]) if static_features else None  # after flattening to [B, D]
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    info = OnnxInfo(input_size=static_size or meta_size, mean=mean, std=std, opset=opset, producer=producer,
                    feature_dim=feature_dim, input_name=input_proto.name, output_name=model.graph.output[0].name,
                    batch=dims[0])
    return module, info
