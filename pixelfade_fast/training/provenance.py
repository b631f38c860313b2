"""Where and how a bundled model was made: machine description and file digest, for its model card."""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch

from ..machine import cpu_name


def machine(device: str, threads: int) -> str:
    """The device, torch version and (on the CPU) the cores and threads a run used."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return (f"{cpu_name()} ({os.cpu_count()} cores visible, {threads} torch thread(s)), "
            f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
