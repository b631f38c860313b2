"""Writing trained weights to a checkpoint file (atomically, as save_safetensors writes)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..models import ReIDModel, save_safetensors


def save_checkpoint(model: ReIDModel, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` to the .safetensors file ``path`` (save_safetensors metadata plus ``metadata``); a reader
    never sees a half-written file."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {str(path)!r}")
    save_safetensors(model, path, metadata)
    return path
