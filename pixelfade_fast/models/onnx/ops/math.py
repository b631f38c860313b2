"""Element-wise math with numpy broadcasting: Add, Sub, Mul, Div, Pow, Max, Min, Sum, Mean, comparisons,
logic (And, Or), Where, and the unary functions (Sqrt, Neg, Exp, Log, Abs, Reciprocal, Floor, Ceil, Sign, Not).

On shape values (Dims) the binary ops, comparisons and Where act entry by entry in Python, so that shape
arithmetic stays in Python ints (SymInts under torch.compile).
"""

from __future__ import annotations

import functools
import operator

import torch

from ..values import Dims, as_items, make_dims, small_int_vector
from .registry import op


def trunc_div(a, b):
    """ONNX integer Div rounds toward zero."""
    return a // b if (a >= 0) == (b >= 0) else -((-a) // b)


def onnx_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def select(condition, a, b):
    return a if condition else b


_BINARY = {  # op type -> (tensor function, Python function on shape entries or None)
    "Add": (torch.add, operator.add), "Sub": (torch.sub, operator.sub), "Mul": (torch.mul, operator.mul),
    "Div": (onnx_div, trunc_div), "Pow": (torch.pow, None),
    "Equal": (torch.eq, operator.eq), "Greater": (torch.gt, operator.gt), "Less": (torch.lt, operator.lt),
    "GreaterOrEqual": (torch.ge, operator.ge), "LessOrEqual": (torch.le, operator.le),
    "And": (torch.logical_and, None), "Or": (torch.logical_or, None),
}
_COMPARISONS = {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"}


def _broadcast_items(ctx, fn, values, dtype):
    """fn applied entry by entry to Dims / small integer Consts (numpy broadcasting of 0-D and 1-D)."""
    entries = [as_items(v) for v in values]
    length = max(len(items) for items, _ in entries)
    if any(len(items) not in (1, length) for items, _ in entries):
        raise ctx.error(f"shape values of lengths {[len(i) for i, _ in entries]} do not broadcast")
    scalar = all(is_scalar for _, is_scalar in entries)
    rows = zip(*[items * length if len(items) == 1 else items for items, _ in entries])
    return make_dims([ctx.item(fn, *row) for row in rows], scalar, dtype)


def _binary(ctx):
    fn, item_fn = _BINARY[ctx.op_type]
    a, b = ctx.input(0), ctx.input(1)
    if item_fn is not None and (isinstance(a, Dims) or isinstance(b, Dims)) and \
            small_int_vector(a) and small_int_vector(b):
        float_dims = any(isinstance(v, Dims) and v.dtype.is_floating_point for v in (a, b))
        if ctx.op_type == "Div" and float_dims:
            item_fn = operator.truediv
        dtype = torch.bool if ctx.op_type in _COMPARISONS else next(v.dtype for v in (a, b) if isinstance(v, Dims))
        return _broadcast_items(ctx, item_fn, (a, b), dtype)
    return ctx.call(fn, a, b)


op(*_BINARY)(_binary)


def mean_of(*xs: torch.Tensor) -> torch.Tensor:
    return functools.reduce(torch.add, xs) / len(xs)


def maximum_of(*xs: torch.Tensor) -> torch.Tensor:
    return functools.reduce(torch.maximum, xs)


def minimum_of(*xs: torch.Tensor) -> torch.Tensor:
    return functools.reduce(torch.minimum, xs)


def sum_of(*xs: torch.Tensor) -> torch.Tensor:
    return functools.reduce(torch.add, xs)


_VARIADIC = {"Max": maximum_of, "Min": minimum_of, "Sum": sum_of, "Mean": mean_of}


@op(*_VARIADIC)
def variadic(ctx):
    inputs = [v for v in ctx.inputs if v is not None]
    if len(inputs) == 1:
        return inputs[0]
    return ctx.call(_VARIADIC[ctx.op_type], *inputs)


@op("Where")
def where(ctx):
    condition, a, b = ctx.input(0), ctx.input(1), ctx.input(2)
    values = (condition, a, b)
    if any(isinstance(v, Dims) for v in values) and all(small_int_vector(v) for v in values):
        dtype = next(v.dtype for v in (a, b) if isinstance(v, Dims)) if any(isinstance(v, Dims) for v in (a, b)) \
            else a.tensor.dtype
        return _broadcast_items(ctx, select, values, dtype)
    return ctx.call(torch.where, condition, a, b)


_UNARY = {
    "Sqrt": torch.sqrt, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Abs": torch.abs,
    "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil, "Sign": torch.sign,
    "Not": torch.logical_not,
}


@op(*_UNARY)
def unary(ctx):
    return ctx.call(_UNARY[ctx.op_type], ctx.input(0))
