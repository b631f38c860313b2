"""Constants and plumbing: Constant, ConstantOfShape, Identity, Dropout (identity: eval semantics), Cast."""

from __future__ import annotations

import torch

from ..proto import torch_dtype
from ..values import Const, Dims, make_dims
from .registry import op


@op("Constant")
def constant(ctx):
    attrs = ctx.attrs
    if "value" in attrs:
        return Const(attrs["value"])
    for name, dtype in (("value_float", torch.float32), ("value_floats", torch.float32),
                        ("value_int", torch.int64), ("value_ints", torch.int64)):
        if name in attrs:
            return Const(torch.tensor(attrs[name], dtype=dtype))
    raise ctx.error(f"only tensor, float(s) and int(s) constants are supported, got {sorted(attrs)}")


@op("ConstantOfShape")
def constant_of_shape(ctx):
    value = ctx.attr("value")
    fill = torch.zeros(1) if value is None else value.reshape(-1)
    shape = ctx.input(0)
    if isinstance(shape, Dims):
        return ctx.call(torch.full, list(shape.items), fill.item(), dtype=fill.dtype, device=ctx.device())
    return ctx.call(torch.full, [int(v) for v in ctx.const(0, "shape").reshape(-1).tolist()], fill.item(),
                    dtype=fill.dtype)


@op("Identity")
def identity(ctx):
    return ctx.input(0)


@op("Dropout")
def dropout(ctx):
    x = ctx.input(0)
    if len(ctx.outputs) > 1 and ctx.outputs[1]:  # the mask: every element kept
        return [x, ctx.call(torch.ones_like, x, dtype=torch.bool)]
    return x


@op("Cast")
def cast(ctx):
    x, dtype = ctx.input(0), torch_dtype(int(ctx.attr("to")))
    if isinstance(x, Dims) and not dtype.is_floating_point and dtype != torch.bool and \
            not x.dtype.is_floating_point:
        return Dims(x.items, x.scalar, dtype)  # integer to integer: the entries stay as they are
    if isinstance(x, Dims):
        convert = float if dtype.is_floating_point else (bool if dtype == torch.bool else int)
        return make_dims([ctx.item(convert, i) for i in x.items], x.scalar, dtype)
    return ctx.call("to", x, dtype)
