"""Shape and indexing: Shape, Size, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Slice,
Gather, Expand, Tile, Pad.

Shape-like inputs that became inputs in later opsets (Squeeze/Unsqueeze axes at 13, Split at 13, Pad pads at
11, Slice starts/ends at 10) are read in both forms. Shape produces a Dims value; the ops that take apart
or combine shape vectors (Gather, Slice, Concat, Squeeze, Unsqueeze, Reshape) keep Dims as Dims.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import fx

from ..values import Const, Dims, Dyn, as_items, make_dims, small_int_vector
from .registry import op


@op("Shape")
def shape(ctx):
    x = ctx.input(0)
    window = slice(int(ctx.attr("start", 0)), ctx.attr("end"))  # start/end exist from opset 15
    if isinstance(x, (Const, Dims)):
        return Const(torch.tensor(list(ctx.static_shape(x)), dtype=torch.int64)[window])
    rank = ctx.rank(x)
    if rank is None:
        raise ctx.error("the rank of the input is unknown (ONNX shape inference could not tell it)")
    return make_dims([ctx.size(x, i) for i in range(rank)][window], scalar=False)


@op("Size")
def size(ctx):
    x = ctx.input(0)
    if isinstance(x, Dyn):
        if x.shape is not None and all(x.shape):
            return Const(torch.tensor(math.prod(x.shape)))
        return make_dims([ctx.builder.emit("call_method", "numel", (x.node,))], scalar=True)
    return ctx.call("numel", x)


def reshape_at_run_time(x: torch.Tensor, shape: list[int], allowzero: bool) -> torch.Tensor:
    """Reshape with a shape computed as a tensor at run time (0 copies the input's size unless allowzero)."""
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@op("Reshape")
def reshape(ctx):
    x, target = ctx.input(0), ctx.int_items(1)
    allowzero = bool(ctx.attr("allowzero", 0))  # opset 14
    if isinstance(target, fx.Node):
        return ctx.call(reshape_at_run_time, x, target, allowzero)
    if isinstance(x, Dims):  # a shape vector reshaped to 0-D or 1-D
        if len(target) > 1:
            raise ctx.error(f"reshaping a shape vector to {target} is not supported")
        return make_dims(x.items, scalar=not target, dtype=x.dtype)
    if not allowzero:
        target = [(x.tensor.shape[i] if isinstance(x, Const) else ctx.size(x, i))
                  if isinstance(s, int) and s == 0 else s for i, s in enumerate(target)]
    return ctx.call("reshape", x, target)


def flatten(x: torch.Tensor, axis: int) -> torch.Tensor:
    """ONNX Flatten: 2-D [prod(shape[:axis]), prod(shape[axis:])], axis in [-rank, rank]."""
    axis = axis + x.dim() if axis < 0 else axis
    if axis == 0:
        return x.reshape(1, -1)
    if axis == x.dim():
        return x.reshape(-1, 1)
    return x.flatten(axis).flatten(0, axis - 1)


@op("Flatten")
def flatten_op(ctx):
    x, axis = ctx.input(0), int(ctx.attr("axis", 1))
    if axis == 1 and (ctx.rank(x) or 0) >= 2:
        return ctx.call("flatten", x, 1)
    return ctx.call(flatten, x, axis)


def reverse_dims(x: torch.Tensor) -> torch.Tensor:
    return x.permute(*reversed(range(x.dim())))


@op("Transpose")
def transpose(ctx):
    x, perm = ctx.input(0), ctx.attr("perm")
    if isinstance(x, Dims):
        return x
    return ctx.call("permute", x, list(perm)) if perm else ctx.call(reverse_dims, x)


def _axes(ctx, input_since: int) -> list[int] | None:
    """The axes attribute (before opset ``input_since``) or input 1 (from then on)."""
    if ctx.opset < input_since:
        axes = ctx.attr("axes")
        return None if axes is None else [int(a) for a in axes]
    return ctx.const_ints(1, "axes")


@op("Squeeze")
def squeeze(ctx):
    x, axes = ctx.input(0), _axes(ctx, 13)
    if isinstance(x, Dims):
        if x.scalar or len(x.items) != 1 or (axes and axes not in ([0], [-1])):
            raise ctx.error(f"cannot squeeze axes {axes} of a shape vector of length {len(x.items)}")
        return make_dims(x.items, scalar=True, dtype=x.dtype)
    return ctx.call(torch.squeeze, x) if not axes else ctx.call(torch.squeeze, x, tuple(axes))


def unsqueeze(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """ONNX Unsqueeze: axes index the output, negative ones counting from its end."""
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


@op("Unsqueeze")
def unsqueeze_op(ctx):
    x, axes = ctx.input(0), _axes(ctx, 13)
    if axes is None:
        raise ctx.error("axes is required")
    if isinstance(x, Dims):
        if not x.scalar or axes not in ([0], [-1]):
            raise ctx.error(f"unsqueezing a shape vector at axes {axes} is not supported")
        return make_dims(x.items, scalar=False, dtype=x.dtype)
    if len(axes) == 1 and axes[0] >= 0:
        return ctx.call("unsqueeze", x, axes[0])
    return ctx.call(unsqueeze, x, axes)


@op("Concat")
def concat(ctx):
    inputs, axis = [v for v in ctx.inputs if v is not None], int(ctx.attr("axis"))
    if any(isinstance(v, Dims) for v in inputs) and all(small_int_vector(v) for v in inputs):
        items = [item for v in inputs for item in as_items(v)[0]]
        return make_dims(items, scalar=False, dtype=next(v.dtype for v in inputs if isinstance(v, Dims)))
    return ctx.call(torch.cat, inputs, axis)


def split_equal(x: torch.Tensor, parts: int, axis: int) -> tuple[torch.Tensor, ...]:
    """Split into ``parts`` pieces of ceil(size / parts), the last one smaller if need be (opset 18)."""
    return torch.split(x, -(-x.shape[axis] // parts), axis)


@op("Split")
def split(ctx):
    x, axis, count = ctx.input(0), int(ctx.attr("axis", 0)), len(ctx.outputs)
    sizes = ctx.attr("split") if ctx.opset < 13 else ctx.const_ints(1, "split")
    if sizes:
        return ctx.call_tuple(count, torch.split, x, [int(s) for s in sizes], axis)
    return ctx.call_tuple(count, split_equal, x, count, axis)


def slice_tensor(x: torch.Tensor, starts, ends, axes, steps) -> torch.Tensor:
    """ONNX Slice: Python slice semantics per axis (negative indices, clamping of INT_MAX / INT_MIN ends,
    negative steps)."""
    index: list = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= x.dim()
        n = x.shape[axis]
        if step > 0:
            index[axis] = slice(min(max(start, -n), n), min(max(end, -n), n), step)
        else:
            index[axis] = torch.arange(*slice(start, end, step).indices(n), device=x.device)
    advanced = [i for i, s in enumerate(index) if isinstance(s, torch.Tensor)]
    basic = x[tuple(s if isinstance(s, slice) else slice(None) for s in index)]
    for axis in advanced:
        basic = basic.index_select(axis, index[axis])
    return basic


@op("Slice")
def slice_op(ctx):
    x = ctx.input(0)
    starts, ends = ctx.int_items(1), ctx.int_items(2)
    if isinstance(starts, fx.Node) or isinstance(ends, fx.Node):
        raise ctx.error("starts and ends computed as run-time tensors are not supported")
    axes = ctx.const_ints(3, "axes") or list(range(len(starts)))
    steps = ctx.const_ints(4, "steps") or [1] * len(starts)
    if isinstance(x, Dims):
        if x.scalar or any(a not in (0, -1) for a in axes) or not all(isinstance(v, int) for v in (*starts, *ends)):
            raise ctx.error("slicing a shape vector needs constant starts/ends on axis 0")
        return make_dims(x.items[slice(starts[0], ends[0], steps[0])], scalar=False, dtype=x.dtype)
    return ctx.call(slice_tensor, x, starts, ends, axes, steps)


def gather(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    """ONNX Gather: out[..., idx..., ...] with negative indices counting from the end of ``axis``."""
    axis %= x.dim()
    flat = indices.reshape(-1)
    flat = torch.where(flat < 0, flat + x.shape[axis], flat)
    picked = x.index_select(axis, flat)
    return picked.reshape(*x.shape[:axis], *indices.shape, *x.shape[axis + 1:])


@op("Gather")
def gather_op(ctx):
    data, indices, axis = ctx.input(0), ctx.input(1), int(ctx.attr("axis", 0))
    if isinstance(data, Dims) and isinstance(indices, Const):
        picked = [data.items[int(i)] for i in indices.tensor.reshape(-1).tolist()]
        return make_dims(picked, scalar=indices.tensor.dim() == 0, dtype=data.dtype)
    if isinstance(indices, Const) and indices.tensor.dim() == 0:
        return ctx.call("select", data, axis, int(indices.tensor))
    return ctx.call(gather, data, indices, axis)


def expand(x: torch.Tensor, shape) -> torch.Tensor:
    """ONNX Expand broadcasts both ways: the result has the broadcast of x's shape and ``shape``."""
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(shape)))


@op("Expand")
def expand_op(ctx):
    return ctx.call(expand, ctx.input(0), ctx.int_items(1))


@op("Tile")
def tile(ctx):
    return ctx.call("repeat", ctx.input(0), ctx.int_items(1))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def pad(x: torch.Tensor, pads: list[int], mode: str, value: float, axes: list[int] | None) -> torch.Tensor:
    """ONNX Pad: pads = [begin of each axis..., end of each axis...] over ``axes`` (default all)."""
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    begins, ends = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[i], pads[i + len(axes)]
    pairs: list[int] = []
    for axis in reversed(range(rank)):
        pairs += [begins[axis], ends[axis]]
    while len(pairs) > 2 and pairs[-2:] == [0, 0]:  # torch pads the last dims; drop untouched leading ones
        pairs = pairs[:-2]
    if mode == "constant":
        return F.pad(x, pairs, value=value)
    return F.pad(x, pairs, mode=_PAD_MODES[mode])


@op("Pad")
def pad_op(ctx):
    mode = ctx.attr("mode", "constant")
    if mode not in _PAD_MODES:
        raise ctx.error(f"mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    pads = ctx.const_ints(1, "pads")
    value = ctx.const(2, "constant_value")
    value = 0.0 if value is None or value.numel() == 0 else float(value.reshape(-1)[0])
    return ctx.call(pad, ctx.input(0), pads, mode, value, ctx.const_ints(3, "axes"))
