"""Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
and LpNormalization.

`axes` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an optional input from then on,
together with noop_with_empty_axes (docs/Changelog.md, ReduceSum-13, ReduceMean-18, ...).
"""

from __future__ import annotations

import operator

import torch

from ..values import Dims, make_dims
from .registry import op

_AXES_BECOME_INPUT = {"ReduceSum": 13}  # every other Reduce* op: 18


def reduce(x: torch.Tensor, kind: str, axes: tuple[int, ...] | None, keepdims: bool) -> torch.Tensor:
    dims = tuple(range(x.dim())) if axes is None else axes
    if kind == "ReduceMean":
        return x.mean(dim=dims, keepdim=keepdims)
    if kind == "ReduceSum":
        return x.sum(dim=dims, keepdim=keepdims)
    if kind == "ReduceSumSquare":
        return (x * x).sum(dim=dims, keepdim=keepdims)
    if kind == "ReduceMax":
        return x.amax(dim=dims, keepdim=keepdims)
    if kind == "ReduceMin":
        return x.amin(dim=dims, keepdim=keepdims)
    if kind in ("ReduceL1", "ReduceL2"):
        return torch.linalg.vector_norm(x, 1 if kind == "ReduceL1" else 2, dim=dims, keepdim=keepdims)
    if kind == "ReduceProd":
        for dim in sorted((d % max(x.dim(), 1) for d in dims), reverse=True):
            x = x.prod(dim=dim, keepdim=keepdims)
        return x
    raise AssertionError(kind)


_KINDS = ("ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2",
          "ReduceProd")


@op(*_KINDS)
def reduce_op(ctx):
    x = ctx.input(0)
    keepdims = bool(ctx.attr("keepdims", 1))
    if ctx.opset < _AXES_BECOME_INPUT.get(ctx.op_type, 18):
        axes = ctx.attr("axes")
    else:
        axes = ctx.const_ints(1, "axes")
        if not axes and ctx.attr("noop_with_empty_axes", 0):
            return x
    axes = tuple(int(a) for a in axes) if axes else None
    if ctx.op_type == "ReduceProd" and isinstance(x, Dims) and axes in (None, (0,), (-1,)):
        product = 1
        for item in x.items:
            product = ctx.item(operator.mul, product, item)
        return make_dims([product], not keepdims, x.dtype)
    return ctx.call(reduce, x, ctx.op_type, axes, keepdims)


def lp_normalize(x: torch.Tensor, p: int, axis: int) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, p, dim=axis, keepdim=True)


@op("LpNormalization")
def lp_normalization(ctx):
    p = int(ctx.attr("p", 2))
    if p not in (1, 2):
        raise ctx.error(f"p must be 1 or 2, got {p}")
    return ctx.call(lp_normalize, ctx.input(0), p, int(ctx.attr("axis", -1)))


