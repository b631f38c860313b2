"""The machine a computation runs on, as far as its bits depend on it: device model and CPU threads."""
from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Iterator

import torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """The GPU's or the CPU's model name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask): the same for a single process and a torchrun rank,
    unlike OMP_NUM_THREADS, which torchrun sets to 1 for every rank."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS)
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
