"""GraphBuilder: walks an ONNX graph once and writes the equivalent torch.fx graph.

Each ONNX node is handed to its op handler (ops/) through an OpContext. Handlers describe the computation
with torch functions; the context folds it right away when every input is a Const, and otherwise appends an
fx node. Weights of Conv / BatchNormalization / Gemm / MatMul become nn.Module submodules (registered by the
handlers through OpContext.module); all other constants become buffers of the root module.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

from .proto import attributes
from .values import Const, Dims, Dyn, Item, Value


class OpContext:
    """What an op handler sees of one ONNX node, and how it adds computation to the graph."""

    def __init__(self, builder: GraphBuilder, node, inputs: list[Value | None]):
        self.builder = builder
        self.op_type: str = node.op_type
        self.name: str = node.name
        self.opset: int = builder.opset
        self.attrs: dict[str, Any] = attributes(node)
        self.inputs = inputs
        self.outputs: list[str] = list(node.output)

    # --- reading the node -------------------------------------------------------------------------------
    def error(self, message: str) -> ValueError:
        return ValueError(f"ONNX {self.op_type} node {self.name!r} (opset {self.opset}): {message}")

    def input(self, index: int) -> Value | None:
        """Input ``index``, or None when it is absent (optional inputs may be left out or named "")."""
        return self.inputs[index] if index < len(self.inputs) else None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def const(self, index: int, what: str) -> torch.Tensor | None:
        """A constant input as a tensor (None if absent); a ValueError if it depends on the image batch."""
        value = self.input(index)
        if value is None:
            return None
        if not isinstance(value, Const):
            raise self.error(f"{what} (input {index}) must be a constant (an initializer or computed from "
                             f"constants); this graph computes it at run time, which is not supported")
        return value.tensor

    def const_ints(self, index: int, what: str) -> list[int] | None:
        tensor = self.const(index, what)
        return None if tensor is None else [int(v) for v in tensor.reshape(-1).tolist()]

    def int_items(self, index: int) -> list[Item] | fx.Node:
        """A shape-like integer input (Reshape shape, Expand shape, ...) as a list of ints / int-valued fx
        nodes; a run-time tensor falls back to an fx node evaluating to a Python list."""
        value = self.input(index)
        if isinstance(value, Const):
            return [int(v) for v in value.tensor.reshape(-1).tolist()]
        if isinstance(value, Dims):
            return list(value.items)
        return self.builder.emit("call_method", "tolist", (value.node,))

    def static_shape(self, value: Value | None) -> tuple[int | None, ...] | None:
        if isinstance(value, Const):
            return tuple(value.tensor.shape)
        if isinstance(value, Dims):
            return () if value.scalar else (len(value.items),)
        return value.shape if isinstance(value, Dyn) else None

    def rank(self, value: Value | None) -> int | None:
        example = self.builder.example(value)
        if isinstance(example, torch.Tensor):
            return example.dim()
        shape = self.static_shape(value)
        return None if shape is None else len(shape)

    # --- building ---------------------------------------------------------------------------------------
    def call(self, fn: Callable | str, *args, **kwargs) -> Value:
        """fn(*args, **kwargs) with Values in args: computed now if nothing is dynamic, else an fx node.
        A str ``fn`` is a tensor method called on args[0]."""
        return self.builder.call(fn, args, kwargs)

    def call_tuple(self, count: int, fn: Callable, *args, **kwargs) -> list[Value]:
        """Like call, for a function returning a sequence of ``count`` tensors (Split)."""
        if not self.builder.is_dynamic((args, kwargs)):
            with torch.no_grad():
                results = fn(*self.builder.folded(args), **self.builder.folded(kwargs))
            return [Const(t) for t in results]
        node = self.builder.call(fn, args, kwargs).node
        return [Dyn(self.builder.emit("call_function", operator.getitem, (node, i))) for i in range(count)]

    def module(self, module: nn.Module, *args: Value, hint: str = "") -> Value:
        """A submodule (in eval mode) applied to args; named after ``hint`` or the node."""
        module.train(False)
        if not self.builder.is_dynamic(args):
            with torch.no_grad():
                return Const(module(*self.builder.folded(args)))
        target = self.builder.add_module(hint or self.name or self.op_type.lower(), module)
        return Dyn(self.builder.emit("call_module", target, tuple(self.builder.to_arg(a) for a in args)))

    def item(self, fn: Callable, *items: Item) -> Item:
        """A Python-level op on shape entries: computed now on ints, else an fx node."""
        if any(isinstance(i, fx.Node) for i in items):
            return self.builder.emit("call_function", fn, items)
        return fn(*items)

    def size(self, value: Dyn, dim: int) -> Item:
        """value.size(dim): a constant when ONNX shape inference knows it, else an fx node."""
        if value.shape is not None and len(value.shape) == self.rank(value) and value.shape[dim]:
            return int(value.shape[dim])
        return self.builder.size_node(value.node, dim)

    def device(self) -> fx.Node:
        """An fx node for the device of the model input (for tensors created at run time)."""
        return self.builder.device_node()


_IDENTIFIER = re.compile(r"\W+")


class GraphBuilder:
    """Holds the fx graph under construction, the root module owning submodules and buffers, and the
    ONNX value name -> Value table."""

    def __init__(self, opset: int):
        self.opset = opset
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.values: dict[str, Value] = {}
        self.const_names: dict[int, str] = {}  # id(tensor) -> initializer name, for readable buffer names
        self._const_nodes: dict[int, tuple[torch.Tensor, fx.Node]] = {}
        self._dims_nodes: dict[int, tuple[Dims, fx.Node]] = {}
        self._size_nodes: dict[tuple[fx.Node, int], fx.Node] = {}
        self._device: fx.Node | None = None
        self.input_node: fx.Node | None = None
        # Every node's value on an example batch, computed as the node is added: it gives ranks and dtypes
        # without per-op shape rules, and checks while loading that the graph runs.
        self.examples: dict[fx.Node, Any] = {}

    def emit(self, op: str, target, args: tuple = (), kwargs: dict | None = None, example: Any = None) -> fx.Node:
        """Add an fx node and compute its example value (``example`` for a placeholder)."""
        kwargs = kwargs or {}
        node = self.graph.create_node(op, target, args, kwargs)
        if op == "placeholder":
            self.examples[node] = example
            return node
        ex_args = fx.node.map_arg(args, self.examples.__getitem__)
        ex_kwargs = fx.node.map_arg(kwargs, self.examples.__getitem__)
        with torch.no_grad():
            if op == "get_attr":
                value = getattr(self.root, target)
            elif op == "call_function":
                value = target(*ex_args, **ex_kwargs)
            elif op == "call_method":
                value = getattr(ex_args[0], target)(*ex_args[1:], **ex_kwargs)
            else:
                value = self.root.get_submodule(target)(*ex_args, **ex_kwargs)
        self.examples[node] = value
        return node

    def example(self, value: Value) -> Any:
        """The example value of a Dyn (a tensor), or None."""
        return self.examples.get(value.node) if isinstance(value, Dyn) else None

    # --- names ------------------------------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        name = _IDENTIFIER.sub("_", hint).strip("_") or "node"
        if name[0].isdigit() or hasattr(nn.Module, name):
            name = "m_" + name
        candidate, count = name, 1
        while hasattr(self.root, candidate):
            count += 1
            candidate = f"{name}_{count}"
        return candidate

    def add_module(self, hint: str, module: nn.Module) -> str:
        name = self.unique_name(hint)
        self.root.add_module(name, module)
        return name

    # --- turning Values into fx arguments ---------------------------------------------------------------
    def const_node(self, tensor: torch.Tensor) -> fx.Node:
        key = id(tensor)
        if key not in self._const_nodes:
            name = self.unique_name(self.const_names.get(key, "const"))
            self.root.register_buffer(name, tensor)
            with self.graph.inserting_after(self.input_node):
                node = self.emit("get_attr", name)
            self._const_nodes[key] = (tensor, node)
        return self._const_nodes[key][1]

    def dims_node(self, dims: Dims) -> fx.Node:
        """A run-time tensor holding a Dims value (when it meets an op without a Dims rule)."""
        key = id(dims)
        if key not in self._dims_nodes:
            node = self.emit("call_function", torch.tensor, (list(dims.items),),
                             {"dtype": dims.dtype, "device": self.device_node()})
            if dims.scalar:
                node = self.emit("call_method", "reshape", (node, ()))
            self._dims_nodes[key] = (dims, node)
        return self._dims_nodes[key][1]

    def size_node(self, node: fx.Node, dim: int) -> fx.Node:
        key = (node, dim)
        if key not in self._size_nodes:
            self._size_nodes[key] = self.emit("call_method", "size", (node, dim))
        return self._size_nodes[key]

    def device_node(self) -> fx.Node:
        if self._device is None:
            with self.graph.inserting_after(self.input_node):
                self._device = self.emit("call_function", getattr, (self.input_node, "device"))
        return self._device

    def to_arg(self, value: Any) -> Any:
        """A handler argument as an fx argument: Values become nodes, containers are mapped."""
        if isinstance(value, Const):
            return self.const_node(value.tensor)
        if isinstance(value, Dyn):
            return value.node
        if isinstance(value, Dims):
            return self.dims_node(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.to_arg(v) for v in value)
        if isinstance(value, dict):
            return {k: self.to_arg(v) for k, v in value.items()}
        return value

    def folded(self, value: Any) -> Any:
        """A handler argument with Consts replaced by their tensors (nothing dynamic may be inside)."""
        if isinstance(value, Const):
            return value.tensor
        if isinstance(value, (list, tuple)):
            return type(value)(self.folded(v) for v in value)
        if isinstance(value, dict):
            return {k: self.folded(v) for k, v in value.items()}
        return value

    def is_dynamic(self, value: Any) -> bool:
        if isinstance(value, (Dyn, Dims, fx.Node)):
            return True
        if isinstance(value, (list, tuple)):
            return any(self.is_dynamic(v) for v in value)
        if isinstance(value, dict):
            return any(self.is_dynamic(v) for v in value.values())
        return False

    def call(self, fn: Callable | str, args: Sequence, kwargs: dict) -> Value:
        if self.is_dynamic((args, kwargs)):
            fx_args, fx_kwargs = self.to_arg(tuple(args)), self.to_arg(dict(kwargs))
            return Dyn(self.emit("call_method" if isinstance(fn, str) else "call_function", fn, fx_args, fx_kwargs))
        args, kwargs = self.folded(tuple(args)), self.folded(dict(kwargs))
        with torch.no_grad():
            result = getattr(args[0], fn)(*args[1:], **kwargs) if isinstance(fn, str) else fn(*args, **kwargs)
        return Const(result if isinstance(result, torch.Tensor) else torch.tensor(result))
