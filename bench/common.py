"""What every benchmark writes beside its numbers: the device, versions, date; and the CSV writer."""
from __future__ import annotations

import csv
import datetime
import platform
from pathlib import Path

import torch

from pixelfade_fast.machine import cpu_name


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


def run_meta(device: torch.device) -> dict:
    """The columns that say where and when a row was measured."""
    return {"device": device_name(device), "torch": torch.__version__, "triton": triton_version(),
            "date": datetime.date.today().isoformat()}


def write_rows(path: Path, rows: list[dict]) -> None:
    """CSV with the union of the rows' columns, in order of first appearance."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def add_row(rows: list[dict], row: dict, line: str, out: Path | None) -> None:
    """Append ``row``, print ``line`` for it, and rewrite ``out`` (when given) so a stopped run keeps its rows."""
    rows.append(row)
    print(line, flush=True)
    if out:
        write_rows(out, rows)
