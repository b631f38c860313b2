"""The table of ONNX op handlers: op type -> function(OpContext) -> Value or list of Values."""

from __future__ import annotations

from collections.abc import Callable

OPS: dict[str, Callable] = {}


def op(*op_types: str):
    """Register the decorated handler for the given ONNX op types (default domain)."""
    def register(handler: Callable) -> Callable:
        for op_type in op_types:
            if op_type in OPS:
                raise AssertionError(f"two handlers for ONNX op {op_type}")
            OPS[op_type] = handler
        return handler
    return register
