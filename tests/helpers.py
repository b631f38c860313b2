"""Comparison helpers shared by the test files."""
from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

RNG_VECTORS = Path(__file__).resolve().parent / "data" / "rng_vectors.json"  # the design's known-answer vectors

_SHOWN = 5  # differing positions listed in a failure message


def assert_close_report(actual: torch.Tensor, expected: torch.Tensor, rtol_norm: float, name: str) -> None:
    """Assert ||actual - expected|| / ||expected|| < rtol_norm, with NaNs in exactly the same places.

    Norms are taken in float64 over the finite positions; when ||expected|| is 0 the bound is absolute.
    On failure the message gives the relative error, how many values differ by more than rtol_norm times
    the largest |expected|, and the first of those positions with both values.
    """
    assert actual.shape == expected.shape, f"{name}: shape {list(actual.shape)} != expected {list(expected.shape)}"
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if not torch.equal(nan_a, nan_e):
        where = torch.nonzero(nan_a != nan_e)[:_SHOWN].tolist()
        raise AssertionError(f"{name}: NaN in different places (actual {int(nan_a.sum())}, expected "
                             f"{int(nan_e.sum())}); first mismatches at {where}")
    a = torch.where(nan_a, 0.0, a)
    e = torch.where(nan_e, 0.0, e)
    scale = float(torch.linalg.vector_norm(e))
    error = float(torch.linalg.vector_norm(a - e)) / (scale if scale > 0 else 1.0)
    if error < rtol_norm:
        return
    tolerance = rtol_norm * max(float(e.abs().max()), 1e-30)
    differing = torch.nonzero((a - e).abs() > tolerance)
    lines = [f"  at {tuple(p)}: actual {a[tuple(p)].item()!r}, expected {e[tuple(p)].item()!r}"
             for p in differing[:_SHOWN].tolist()]
    raise AssertionError(f"{name}: relative error {error:.3e} >= {rtol_norm:g}; {len(differing)} of {e.numel()} "
                         f"values differ by more than {tolerance:.3e}\n" + "\n".join(lines))


def load_rng_vectors() -> dict:
    """The known-answer vectors (splitmix64, Philox words, η, mask ids) committed beside the tests.

    A missing file is an error, not a skip: a clone without it must fail loudly.
    """
    return json.loads(RNG_VECTORS.read_text())


def load_rng_vectors_v2() -> dict:
    """Contract v2's known answers (key derivation, Philox words with every counter word, η, mask ids), made by
    an implementation independent of the project's; its ``contract`` field is the exact text of the contract."""
    return json.loads(RNG_VECTORS.with_name("rng_vectors_v2.json").read_text())


# Fixed, non-ImageNet preprocessing buffers so that a test can tell file values from defaults.
REFERENCE_PIXEL_BUFFERS = {"pixel_mean": (123.0, 110.0, 100.0), "pixel_std": (60.0, 55.0, 50.0)}


def reference_weights(layout: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """Deterministic, non-trivial tensors for a {key: shape} layout, each drawn from a generator seeded
    with the CRC-32 of its key name, so that two implementations with the same key names get the same
    weights whatever order they list them in (the layout fixtures' reference features use this).

    Weights of rank >= 2 are normal with variance 1 / fan_in; 1-d "weight"s (norm scales) and running
    variances uniform in [0.75, 1.25); biases and running means normal with std 0.1; GeM exponents 3;
    fast-reid's pixel buffers REFERENCE_PIXEL_BUFFERS. The output BatchNorm of non-local blocks (keys
    "*.W.1.weight" / "*.W.1.bias") is scaled by 0.1: the non-local term is cubic in its input, and at
    unit scale five blocks overflow float32.
    """
    out = {}
    for key, shape in layout.items():
        gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        leaf = key.rsplit(".", 1)[-1]
        shape = tuple(shape)
        if key in REFERENCE_PIXEL_BUFFERS:
            tensor = torch.tensor(REFERENCE_PIXEL_BUFFERS[key]).view(shape)
        elif leaf == "num_batches_tracked":
            tensor = torch.zeros(shape, dtype=torch.long)
        elif leaf == "p":
            tensor = torch.full(shape, 3.0)
        elif len(shape) >= 2:
            tensor = torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
        elif leaf in ("weight", "running_var"):
            tensor = torch.rand(shape, generator=gen) * 0.5 + 0.75
        else:
            tensor = torch.randn(shape, generator=gen) * 0.1
        if key.endswith((".W.1.weight", ".W.1.bias")):
            tensor = tensor * 0.1
        out[key] = tensor
    return out


def reference_input(batch: int = 2, size: tuple[int, int] = (128, 64)) -> torch.Tensor:
    """The normalised input batch of the layout fixtures' reference features."""
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))


def feature_signature(features: torch.Tensor) -> dict[str, list]:
    """A compact fingerprint of features [B, D]: the first 16 values, the L2 norms and 8 projections
    on fixed random directions of each row (any change to the features changes the projections)."""
    directions = torch.randn(features.shape[1], 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    f = features.detach().double()
    return {"head": f[:, :16].tolist(), "norm": f.norm(dim=1).tolist(), "projection": (f @ directions).tolist()}


def randomise_bn_stats(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics and affine parameters (of BatchNorm, and of affine
    InstanceNorm), as in a trained network."""
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) and m.affine:
            c = m.num_features
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
