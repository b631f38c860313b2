"""The common result of every dataset reader: image records grouped into train / query / gallery."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or list file is missing, or holds no images where some were expected."""


@dataclass(frozen=True)
class Record:
    """One image: its path, identity (pid) and 0-based camera id.

    pid −1 marks junk images (ignored by the Re-ID protocol), pid 0 distractors (Market-1501 convention).
    """

    path: str
    pid: int
    camid: int


@dataclass
class ReIDSplit:
    """Records of one dataset split into a training set and a query / gallery test set."""

    train: list[Record] = field(default_factory=list)
    query: list[Record] = field(default_factory=list)
    gallery: list[Record] = field(default_factory=list)

    def pids(self, part: str) -> set[int]:
        """The set of identities in `part` ("train", "query" or "gallery")."""
        return {r.pid for r in self._part(part)}

    def camids(self, part: str) -> set[int]:
        """The set of camera ids in `part` ("train", "query" or "gallery")."""
        return {r.camid for r in self._part(part)}

    def _part(self, part: str) -> list[Record]:
        if part not in ("train", "query", "gallery"):
            raise ValueError(f"part must be 'train', 'query' or 'gallery', got {part!r}")
        return getattr(self, part)


def require_dir(path: Path, dataset: str, layout: str) -> Path:
    """Return `path` if it is a folder, else raise DatasetNotFoundError naming it and the expected layout."""
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{dataset}: folder {str(path)!r} does not exist or is not a folder. Expected layout: {layout}"
        )
    return path


def require_file(path: Path, dataset: str, layout: str) -> Path:
    """Return `path` if it is a file, else raise DatasetNotFoundError naming it and the expected layout."""
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{dataset}: file {str(path)!r} does not exist. Expected layout: {layout}"
        )
    return path


def require_records(records: list[Record], where: Path, dataset: str, layout: str) -> list[Record]:
    """Return `records` if non-empty, else raise DatasetNotFoundError (an empty folder is a wrong path)."""
    if not records:
        raise DatasetNotFoundError(
            f"{dataset}: no images found in {str(where)!r}. Expected layout: {layout}"
        )
    return records


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files (jpg/jpeg/png/bmp, any case) in `folder`, sorted by path so readers are deterministic."""
    if recursive:
        found = [
            Path(dirpath) / name
            for dirpath, _, names in os.walk(folder)
            for name in names
            if name.lower().endswith(IMAGE_SUFFIXES)
        ]
    else:
        found = [p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)
