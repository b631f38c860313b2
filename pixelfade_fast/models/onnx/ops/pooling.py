"""Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

torch's pooling functions are used when they express the node exactly (symmetric pads of at most half the
window, no AveragePool dilation). Otherwise the input is padded explicitly to the extent the ONNX output
size needs, and pooled without padding (AveragePool: window sums by a ones convolution, divided by the count
of the window's positions that ONNX counts). Output sizes follow the ONNX rule (docs/Operators.md,
AveragePool/MaxPool): floor or ceil of (n + pads - dilation * (k - 1) - 1) / stride + 1, dropping a last
window that would start in the end padding; torch uses the same rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .padding import resolve_auto_pad, same_pads, torch_pad_pairs
from .registry import op

_MAX_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _output_extent(n: int, k: int, s: int, d: int, begin: int, end: int, ceil_mode: bool) -> int:
    """The end padding the ONNX output windows reach (may differ from ``end`` under ceil_mode or when the
    last stride does not fit)."""
    reach = d * (k - 1) + 1
    span = n + begin + end - reach
    count = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (count - 1) * s >= n + begin:
        count -= 1
    return (count - 1) * s + reach - n - begin


def _resolve(x, kernel, strides, dilations, mode, begins, ends):
    if mode == "explicit":
        return begins, ends
    return same_pads(x.shape[2:], kernel, strides, dilations, mode == "same_lower")


def _torch_can_pad(kernel, dilations, begins, ends) -> bool:
    return begins == ends and all(b <= (d * (k - 1) + 1) // 2 for b, k, d in zip(begins, kernel, dilations))


def max_pool(x, kernel, strides, dilations, mode, begins, ends, ceil_mode: bool) -> torch.Tensor:
    nd = len(kernel)
    begins, ends = _resolve(x, kernel, strides, dilations, mode, begins, ends)
    if _torch_can_pad(kernel, dilations, begins, ends):
        return _MAX_POOLS[nd](x, kernel, strides, begins, dilations, ceil_mode=ceil_mode)
    reach = [_output_extent(n, k, s, d, b, e, ceil_mode)
             for n, k, s, d, b, e in zip(x.shape[2:], kernel, strides, dilations, begins, ends)]
    padded = F.pad(x, torch_pad_pairs(begins, reach), value=float("-inf"))
    return _MAX_POOLS[nd](padded, kernel, strides, 0, dilations)


def avg_pool(x, kernel, strides, dilations, mode, begins, ends, ceil_mode: bool,
             count_include_pad: bool) -> torch.Tensor:
    nd = len(kernel)
    begins, ends = _resolve(x, kernel, strides, dilations, mode, begins, ends)
    if all(d == 1 for d in dilations) and _torch_can_pad(kernel, dilations, begins, ends):
        return _AVG_POOLS[nd](x, kernel, strides, begins, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    sizes = list(x.shape[2:])
    reach = [_output_extent(n, k, s, d, b, e, ceil_mode)
             for n, k, s, d, b, e in zip(sizes, kernel, strides, dilations, begins, ends)]
    window = torch.ones((x.shape[1], 1, *kernel), dtype=x.dtype, device=x.device)
    sums = _CONVS[nd](F.pad(x, torch_pad_pairs(begins, reach)), window, None, strides, 0, dilations, x.shape[1])
    # Positions ONNX counts: the input, plus the explicit pads with count_include_pad (never the extra
    # end padding that ceil_mode windows reach into).
    ones = torch.ones((1, 1, *sizes), dtype=x.dtype, device=x.device)
    if count_include_pad:
        counted = F.pad(F.pad(ones, torch_pad_pairs(begins, ends), value=1.0),
                        torch_pad_pairs([0] * nd, [r - e for r, e in zip(reach, ends)]))
    else:
        counted = F.pad(ones, torch_pad_pairs(begins, reach))
    counts = _CONVS[nd](counted, window[:1], None, strides, 0, dilations)
    return sums / counts


def _window(ctx, x):
    kernel = list(ctx.attr("kernel_shape", []))
    if not kernel:
        raise ctx.error("kernel_shape is required")
    nd = len(kernel)
    if nd not in _MAX_POOLS:
        raise ctx.error(f"only 1-D, 2-D and 3-D pooling is supported, got kernel_shape {kernel}")
    strides = list(ctx.attr("strides", [1] * nd))
    dilations = list(ctx.attr("dilations", [1] * nd))
    mode, begins, ends = resolve_auto_pad(ctx, nd)
    return kernel, strides, dilations, mode, begins, ends


@op("MaxPool")
def max_pool_op(ctx):
    if any(ctx.outputs[1:]):
        raise ctx.error("the Indices output is not supported")
    if int(ctx.attr("storage_order", 0)) not in (0, 1):
        raise ctx.error("storage_order must be 0 or 1")
    x = ctx.input(0)
    return ctx.call(max_pool, x, *_window(ctx, x), bool(ctx.attr("ceil_mode", 0)))


@op("AveragePool")
def avg_pool_op(ctx):
    x = ctx.input(0)
    return ctx.call(avg_pool, x, *_window(ctx, x), bool(ctx.attr("ceil_mode", 0)),
                    bool(ctx.attr("count_include_pad", 0)))


def global_pool(x: torch.Tensor, use_max: bool) -> torch.Tensor:
    dims = tuple(range(2, x.dim()))
    return x.amax(dim=dims, keepdim=True) if use_max else x.mean(dim=dims, keepdim=True)


@op("GlobalAveragePool", "GlobalMaxPool")
def global_pool_op(ctx):
    return ctx.call(global_pool, ctx.input(0), ctx.op_type == "GlobalMaxPool")
