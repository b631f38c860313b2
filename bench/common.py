"""What every benchmark writes beside its numbers: the device, versions, date; and the CSV writers.

Every benchmark writes the one long format (Liger-Kernel's: one row per measurement, fixed columns): build rows
with ``measurement`` and write them with ``write_measurements``. The columns:

- ``bench``: the script (``e2e``, ``ops``, ...); ``case``: what was measured (a model and size, an op and shape);
  ``provider``: whose implementation (``protect_cpp``, ``official_loop``, ``floor``, ``reference``, ...);
- ``metric``, ``unit``: e.g. ``time_per_image_step`` in ``ms``, or ``speedup_vs_official_loop`` in ``x``;
- ``x_name``, ``x_value``: the swept variable of the row (``batch``, 16), empty when nothing is swept;
- ``value`` (the median), ``value_p20``, ``value_p80`` (quantiles of the repeats; empty for one repeat), ``repeats``;
- ``config``: the remaining settings as compact JSON (sorted keys);
- ``cpu_model``, ``threads``, ``device``, ``torch``, ``triton``, ``version``, ``date``: where and when.
"""
from __future__ import annotations

import csv
import datetime
import json
import platform
import statistics
from pathlib import Path
from typing import Sequence

import torch

from pixelfade_fast.machine import cpu_name
from pixelfade_fast.version import __version__

COLUMNS = ("bench", "case", "provider", "metric", "unit", "x_name", "x_value", "value", "value_p20", "value_p80",
           "repeats", "config", "cpu_model", "threads", "device", "torch", "triton", "version", "date")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def cpu_model() -> str:
    """The CPU's model name (the package's one reading of /proc/cpuinfo)."""
    return cpu_name()


def triton_version() -> str:
    try:
        import triton

        return triton.__version__
    except ImportError:
        return "absent"


def _quantile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def measurement(bench: str, case: str, provider: str, metric: str, unit: str, values: float | Sequence[float], *,
                device: torch.device, x_name: str = "", x_value: object = "", config: dict | None = None) -> dict:
    """One row of the long format: the median of ``values`` (a number or the repeats) with its 20/80% quantiles."""
    values = [float(values)] if isinstance(values, (int, float)) else [float(value) for value in values]
    if not values:
        raise ValueError(f"{bench}/{case}/{provider}/{metric}: no values to record")
    several = len(values) > 1
    return {"bench": bench, "case": case, "provider": provider, "metric": metric, "unit": unit,
            "x_name": x_name, "x_value": x_value, "value": statistics.median(values),
            "value_p20": _quantile(values, 0.2) if several else "",
            "value_p80": _quantile(values, 0.8) if several else "", "repeats": len(values),
            "config": json.dumps(config or {}, sort_keys=True, separators=(",", ":")),
            "cpu_model": cpu_name(), "threads": torch.get_num_threads(), "device": device_name(device),
            "torch": torch.__version__, "triton": triton_version(), "version": __version__,
            "date": datetime.date.today().isoformat()}


def write_measurements(path: Path, rows: list[dict]) -> None:
    """Write long-format rows (``measurement``); refuses a row with other columns, so every CSV reads the same."""
    for row in rows:
        if tuple(row) != COLUMNS:
            raise ValueError(f"{path}: a row has columns {tuple(row)}, the long format has {COLUMNS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)
    print(f"wrote {path} ({len(rows)} rows)")


def read_measurements(path: Path) -> list[dict]:
    """The rows of a long-format CSV, ``value`` as float; refuses a CSV in another layout."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path} is not a long-format benchmark CSV (columns {reader.fieldnames})")
        return [{**row, "value": float(row["value"])} for row in reader]
