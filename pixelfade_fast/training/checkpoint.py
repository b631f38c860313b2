"""Writing trained weights atomically: a temporary file in the target folder, then a rename."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..models import ReIDModel, save_safetensors


def save_checkpoint(model: ReIDModel, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` to the .safetensors file ``path`` (save_safetensors metadata plus ``metadata``).

    A reader never sees a half-written file: the weights go to a temporary file beside ``path``,
    which then replaces ``path`` in one rename.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_safetensors(model, temporary, metadata)
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; weights are ordinary readable files
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
