"""Activations: Relu, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Clip, Erf, Elu, Selu,
Softplus, Softsign, Softmax, LogSoftmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import op

_UNARY = {
    "Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Erf": torch.erf,
    "HardSwish": F.hardswish, "Softsign": F.softsign,
}


def _unary(ctx):
    return ctx.call(_UNARY[ctx.op_type], ctx.input(0))


op(*_UNARY)(_unary)


@op("LeakyRelu")
def leaky_relu(ctx):
    return ctx.call(F.leaky_relu, ctx.input(0), float(ctx.attr("alpha", 0.01)))


def prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """ONNX PRelu: slope broadcasts unidirectionally to x (F.prelu only takes a per-channel vector)."""
    return torch.where(x < 0, x * slope, x)


@op("PRelu")
def prelu_op(ctx):
    return ctx.call(prelu, ctx.input(0), ctx.input(1))


def hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(x * alpha + beta, 0.0, 1.0)


@op("HardSigmoid")
def hard_sigmoid_op(ctx):
    return ctx.call(hard_sigmoid, ctx.input(0), float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5)))


@op("Clip")
def clip(ctx):
    # Opset >= 11: min and max are optional inputs (opset 6 had attributes; opsets < 11 are refused on load).
    low, high = ctx.input(1), ctx.input(2)
    if low is None and high is None:
        return ctx.input(0)
    return ctx.call(torch.clamp, ctx.input(0), low, high)


@op("Elu")
def elu(ctx):
    return ctx.call(F.elu, ctx.input(0), float(ctx.attr("alpha", 1.0)))


def selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x))


@op("Selu")
def selu_op(ctx):
    return ctx.call(selu, ctx.input(0), float(ctx.attr("alpha", 1.67326319217681884765625)),
                    float(ctx.attr("gamma", 1.05070102214813232421875)))


@op("Softplus")
def softplus(ctx):
    return ctx.call(F.softplus, ctx.input(0))


def coerced_softmax(x: torch.Tensor, axis: int, log: bool) -> torch.Tensor:
    """Softmax before opset 13: over all dims from ``axis`` on, as if x were reshaped to 2-D there."""
    flat = x.reshape(*x.shape[:axis % x.dim()], -1)
    out = torch.log_softmax(flat, -1) if log else torch.softmax(flat, -1)
    return out.reshape(x.shape)


@op("Softmax", "LogSoftmax")
def softmax(ctx):
    log = ctx.op_type == "LogSoftmax"
    if ctx.opset < 13:
        return ctx.call(coerced_softmax, ctx.input(0), int(ctx.attr("axis", 1)), log)
    return ctx.call(torch.log_softmax if log else torch.softmax, ctx.input(0), int(ctx.attr("axis", -1)))
