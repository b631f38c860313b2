"""Comparison helpers shared by the test files."""
from __future__ import annotations

import json
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
