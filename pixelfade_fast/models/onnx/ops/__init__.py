"""ONNX op handlers, one module per op family; importing them fills OPS."""

from . import activations, layers, math, pooling, reduce, shape, tensor  # noqa: F401  (registration)
from .registry import OPS

__all__ = ["OPS"]
