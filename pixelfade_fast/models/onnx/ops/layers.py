"""Layers with weights: Conv, BatchNormalization, InstanceNormalization, Gemm, MatMul.

With constant weights they become nn.Conv{1,2,3}d / nn.BatchNorm{1,2,3}d / nn.Linear submodules (so fx passes
such as Conv+BN folding and torch.compile see the same modules as in our zoo models); weights computed at run
time go through the functional form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..values import Const, Dyn
from .padding import pad_same, resolve_auto_pad, torch_pad_pairs
from .registry import op

_CONV_MODULES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_BATCH_NORMS = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _hint(ctx, weight) -> str:
    """A submodule name: the weight initializer's name without ".weight" (torch exports keep module
    paths there), else the node name."""
    name = ctx.builder.const_names.get(id(weight.tensor), "") if isinstance(weight, Const) else ""
    if name.endswith(".weight") and not name.startswith("onnx::"):
        return name[: -len(".weight")]
    return ctx.name or ctx.op_type.lower()


def _parameter(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone().contiguous())


def _shell(cls, *args, **kwargs) -> nn.Module:
    """A module built on the meta device (no init work); every tensor in it is then replaced."""
    return cls(*args, device="meta", **kwargs)


@op("Conv")
def conv(ctx):
    x, weight, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    kernel = ctx.attr("kernel_shape")
    w_rank = ctx.rank(weight)
    spatial = len(kernel) if kernel else (w_rank - 2 if w_rank else None)
    if spatial not in _CONV_MODULES:
        raise ctx.error(f"only 1-D, 2-D and 3-D convolutions are supported (weight shape "
                        f"{ctx.static_shape(weight)})")
    if not kernel:
        kernel = list(ctx.static_shape(weight)[2:])
    strides = list(ctx.attr("strides", [1] * spatial))
    dilations = list(ctx.attr("dilations", [1] * spatial))
    groups = int(ctx.attr("group", 1))
    mode, begins, ends = resolve_auto_pad(ctx, spatial)
    if mode != "explicit":
        x, padding = ctx.call(pad_same, x, kernel, strides, dilations, mode == "same_lower"), [0] * spatial
    elif begins == ends:
        padding = begins
    else:  # asymmetric: nn.Conv takes one padding per side pair
        x, padding = ctx.call(F.pad, x, torch_pad_pairs(begins, ends)), [0] * spatial
    if isinstance(weight, Const) and (bias is None or isinstance(bias, Const)):
        w = weight.tensor
        module = _shell(_CONV_MODULES[spatial], w.shape[1] * groups, w.shape[0], tuple(kernel),
                           stride=tuple(strides), padding=tuple(padding), dilation=tuple(dilations),
                           groups=groups, bias=bias is not None, dtype=w.dtype)
        module.weight = _parameter(w)
        if bias is not None:
            module.bias = _parameter(bias.tensor)
        return ctx.module(module, x, hint=_hint(ctx, weight))
    return ctx.call(_CONV_FUNCTIONS[spatial], x, weight, bias, strides, padding, dilations, groups)


@op("BatchNormalization")
def batch_norm(ctx):
    if any(ctx.outputs[1:]):
        raise ctx.error("training-mode outputs (running mean / variance) are not supported; export the "
                        "model in eval mode")
    # Eval semantics whatever training_mode says: normalise with the stored statistics.
    x, scale, bias, mean, var = (ctx.input(i) for i in range(5))
    eps = float(ctx.attr("epsilon", 1e-5))
    rank = ctx.rank(x)
    if rank in _BATCH_NORMS and all(isinstance(v, Const) for v in (scale, bias, mean, var)):
        channels = scale.tensor.numel()
        module = _shell(_BATCH_NORMS[rank], channels, eps=eps, dtype=scale.tensor.dtype)
        module.weight, module.bias = _parameter(scale.tensor), _parameter(bias.tensor)
        module.running_mean = mean.tensor.detach().clone().to(scale.tensor.dtype)
        module.running_var = var.tensor.detach().clone().to(scale.tensor.dtype)
        module.num_batches_tracked = torch.zeros((), dtype=torch.long)
        return ctx.module(module, x, hint=_hint(ctx, scale))
    return ctx.call(F.batch_norm, x, mean, var, scale, bias, False, 0.0, eps)


@op("InstanceNormalization")
def instance_norm(ctx):
    return ctx.call(F.instance_norm, ctx.input(0), weight=ctx.input(1), bias=ctx.input(2),
                    eps=float(ctx.attr("epsilon", 1e-5)))


def gemm(a, b, c, alpha: float, beta: float, trans_a: bool, trans_b: bool) -> torch.Tensor:
    """ONNX Gemm: alpha * A' @ B' + beta * C (C broadcasts to the result)."""
    y = (a.t() if trans_a else a) @ (b.t() if trans_b else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    module = _shell(nn.Linear, weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    module.weight = _parameter(weight)
    if bias is not None:
        module.bias = _parameter(bias)
    return module


@op("Gemm")
def gemm_op(ctx):
    a, b, c = ctx.input(0), ctx.input(1), ctx.input(2)
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    trans_a, trans_b = bool(ctx.attr("transA", 0)), bool(ctx.attr("transB", 0))
    if isinstance(a, Dyn) and not trans_a and isinstance(b, Const) and b.tensor.dim() == 2:
        weight = b.tensor if trans_b else b.tensor.t()  # nn.Linear keeps [out, in]
        out = weight.shape[0]
        if c is None:
            return ctx.module(_linear(weight * alpha, None), a, hint=_hint(ctx, b))
        # A bias that is the same for every row ([N], [1, N] or a scalar) fits nn.Linear.
        if isinstance(c, Const) and c.tensor.numel() in (1, out) and c.tensor.dim() <= 2 and \
                (c.tensor.dim() < 2 or c.tensor.shape[0] == 1):
            bias = (c.tensor * beta).reshape(-1).expand(out)
            return ctx.module(_linear(weight * alpha, bias), a, hint=_hint(ctx, b))
    return ctx.call(gemm, a, b, c, alpha, beta, trans_a, trans_b)


@op("MatMul")
def matmul(ctx):
    a, b = ctx.input(0), ctx.input(1)
    if isinstance(a, Dyn) and isinstance(b, Const) and b.tensor.dim() == 2:
        return ctx.module(_linear(b.tensor.t(), None), a, hint=_hint(ctx, b))
    return ctx.call(torch.matmul, a, b)
