"""Reading ONNX protobufs: the lazy `onnx` import, tensors and attributes as torch/Python values."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

MIN_OPSET = 11  # attributes that became inputs (Clip min/max, Pad pads, Slice starts, ...) are read in their >= 11 form
MAX_OPSET = 22  # covered ops have the same semantics up to here (later versions only add element types)
DEFAULT_DOMAINS = ("", "ai.onnx")


def import_onnx():
    """The `onnx` package, imported only when an ONNX file is handled."""
    try:
        import onnx
    except ImportError as err:
        raise ImportError("reading or writing .onnx files needs the 'onnx' package: pip install onnx") from err
    return onnx


def read_model(path: str | os.PathLike):
    """The ModelProto in ``path`` (external data files next to it are loaded), or a ValueError saying why not."""
    onnx = import_onnx()
    from google.protobuf.message import DecodeError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file not found: {path!r}")
    try:
        model = onnx.load(path)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path!r} is not an ONNX model (protobuf decoding failed: {err})") from err
    if not model.graph.node or not model.opset_import:
        raise ValueError(f"{path!r} is not an ONNX model: it holds no graph nodes or no opset import "
                         f"(is it a torch checkpoint or another format?)")
    return model


def default_opset(model) -> int:
    """The version of the default (ai.onnx) operator set the model imports."""
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    raise ValueError("the ONNX model does not import the default operator set (ai.onnx)")


def to_torch(tensor_proto) -> torch.Tensor:
    """A TensorProto as a CPU torch tensor (a copy, so the protobuf may be freed)."""
    onnx = import_onnx()
    array = onnx.numpy_helper.to_array(tensor_proto)
    if array.dtype == np.dtype(object) or array.dtype.kind in "SU":
        raise ValueError(f"tensor {tensor_proto.name!r} holds strings, which no supported op takes")
    return torch.from_numpy(np.array(array, copy=True))


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX TensorProto.DataType value."""
    onnx = import_onnx()
    try:
        np_type = onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
        return torch.from_numpy(np.zeros(0, dtype=np_type)).dtype
    except (KeyError, TypeError) as err:
        name = onnx.TensorProto.DataType.Name(onnx_type) if onnx_type in onnx.TensorProto.DataType.values() \
            else str(onnx_type)
        raise ValueError(f"ONNX element type {name} has no torch equivalent here") from err


def attributes(node) -> dict[str, Any]:
    """A node's attributes as Python values: ints, floats, str, lists, and tensors as torch tensors."""
    onnx = import_onnx()
    values: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = to_torch(value)
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        values[attr.name] = value
    return values


def static_shapes(model) -> dict[str, tuple[int | None, ...]]:
    """Value name -> shape from ONNX shape inference (None for a dimension that is not a known constant).

    Only ranks and constant dimensions are taken from it; a value it leaves out is simply absent.
    """
    onnx = import_onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is only a hint for ranks and static sizes; the model stays usable without it
        inferred = model
    shapes: dict[str, tuple[int | None, ...]] = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        kind = info.type.WhichOneof("value")
        if kind != "tensor_type" or not info.type.tensor_type.HasField("shape"):
            continue
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    return shapes
