"""The three kinds of value the graph builder tracks for each ONNX tensor name.

Const: known while building (initializers, Constant nodes and everything computed only from them is folded).
Dyn: computed at run time by an fx node (everything that depends on the image batch).
Dims: a small integer vector (or scalar) whose entries are Python ints or fx nodes that yield ints, such as
  the batch size. Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains stay in this form, so the Reshape
  receives Python ints (SymInts under torch.compile) instead of a tensor that would need .tolist().
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx

Item = int | float | bool | fx.Node  # one entry of a Dims value


@dataclass(frozen=True)
class Const:
    tensor: torch.Tensor


@dataclass(frozen=True)
class Dyn:
    node: fx.Node
    shape: tuple[int | None, ...] | None = None  # from ONNX shape inference (None: unknown dimension)


@dataclass(frozen=True)
class Dims:
    items: tuple[Item, ...]
    scalar: bool  # a 0-D value (then items has one entry)
    dtype: torch.dtype = torch.int64


Value = Const | Dyn | Dims


def make_dims(items, scalar: bool, dtype: torch.dtype = torch.int64) -> Value:
    """Dims, or a Const when every entry is already a number."""
    items = tuple(items)
    if not any(isinstance(i, fx.Node) for i in items):
        tensor = torch.tensor(list(items), dtype=dtype)
        return Const(tensor.reshape(()) if scalar else tensor)
    return Dims(items, scalar, dtype)


def small_int_vector(value: Value) -> bool:
    """Whether a value can take part in Dims arithmetic: Dims, or a Const integer scalar/vector."""
    if isinstance(value, Dims):
        return True
    return (isinstance(value, Const) and value.tensor.dim() <= 1 and value.tensor.numel() <= 64
            and not value.tensor.is_floating_point())


def as_items(value: Value) -> tuple[tuple[Item, ...], bool]:
    """(entries, is_scalar) of a Dims or a small integer Const."""
    if isinstance(value, Dims):
        return value.items, value.scalar
    assert isinstance(value, Const)
    return tuple(value.tensor.reshape(-1).tolist()), value.tensor.dim() == 0
