"""Padding arithmetic shared by Conv and the pooling ops (ONNX `pads` / `auto_pad` attributes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def split_pads(pads: list[int] | None, spatial: int) -> tuple[list[int], list[int]]:
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end, ...] -> (begins, ends); absent means zeros."""
    if not pads:
        return [0] * spatial, [0] * spatial
    return list(pads[:spatial]), list(pads[spatial:])


def same_pads(sizes, kernel, strides, dilations, lower: bool) -> tuple[list[int], list[int]]:
    """auto_pad SAME_UPPER / SAME_LOWER: output size ceil(n / stride); an odd total goes to the end (UPPER)
    or the beginning (LOWER)."""
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small, large = total // 2, total - total // 2
        begins.append(large if lower else small)
        ends.append(small if lower else large)
    return begins, ends


def torch_pad_pairs(begins, ends) -> list[int]:
    """(begins, ends) over the spatial dims -> F.pad's order (last dim first)."""
    pairs: list[int] = []
    for b, e in zip(reversed(begins), reversed(ends)):
        pairs += [b, e]
    return pairs


def pad_same(x: torch.Tensor, kernel, strides, dilations, lower: bool) -> torch.Tensor:
    """Zero padding for auto_pad SAME_* (depends on the run-time input size)."""
    begins, ends = same_pads(x.shape[2:], kernel, strides, dilations, lower)
    return F.pad(x, torch_pad_pairs(begins, ends))


def resolve_auto_pad(ctx, spatial: int) -> tuple[str, list[int], list[int]]:
    """(mode, begins, ends) of a Conv/pool node: mode "explicit" (pads / VALID) or "same_upper"/"same_lower"."""
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        begins, ends = split_pads(ctx.attr("pads"), spatial)
        return "explicit", begins, ends
    if auto_pad == "VALID":
        return "explicit", [0] * spatial, [0] * spatial
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return auto_pad.lower(), [0] * spatial, [0] * spatial
    raise ctx.error(f"auto_pad={auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
