"""Atomic, durable file writes: a temporary file beside the target, fsync, rename. A reader sees the old file or
the new one, never a part, and an interrupted write leaves no temporary file behind. The one home of this for the
gallery's outputs, manifests and run records, the seed file, reports, trained weights and the tuning cache (a leaf:
every layer writes files)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: Path, write: Callable[[BinaryIO], None], mode: int) -> None:
    """``write(stream)`` into a temporary file with permissions ``mode`` from the start, then rename it to
    ``path`` (created folders included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, mode)  # mkstemp creates 0600
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """``data`` to ``path`` atomically, with ``mode`` (default: what a plain new file gets, ``default_file_mode``)."""
    write_atomic(path, lambda stream: stream.write(data), default_file_mode() if mode is None else mode)


def default_file_mode() -> int:
    """0666 minus the process's umask: what a plain new file gets (read once, before threads start: os.umask
    is process-wide)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
