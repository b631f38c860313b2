"""The manifest: one JSON line per input image (protected or failed), appended as outputs land.

A line is appended only after its output file is in place, and flushed to disk at once, so the manifest never lists an
image that is not there. A line cut short by a crash (power loss, full disk) is the only damage an append can
leave; it is dropped (its image is redone) before the next append, so the file stays one valid line per image.
Every other malformed line is refused with its line number: the manifest is the record of what was done.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from ..atomic_file import default_file_mode, write_atomic
from .errors import GalleryError

STATUSES = ("protected", "failed")


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # input path relative to IN (POSIX)
    output: str | None  # output path relative to OUT; None when failed
    uid: int
    batch: int
    status: str
    final_loss: float | None
    met_epsilon: bool | None
    reason: str | None  # why a failed input failed
    config_hash: str
    model_id: str
    refine_steps: int = 0  # CO-only steps added by `pixelfade refine` after the run
    # Content binding (absent from the lines of runs before it: None, unknown, not checked)
    input_digest: str | None = None  # digest of the input file's bytes
    output_digest: str | None = None  # digest of the output file's bytes
    output_size: int | None = None  # the output file's size in bytes
    # Storage (absent from the lines of runs before it: PNG, no fallback)
    quality: int | None = None  # the JPEG / WebP quality the file was encoded at (None: PNG)
    fallback_steps: int = 0  # CO-only steps the codec fallback added after the decoded file missed ε

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


_TYPES = {"path": (str,), "output": (str, type(None)), "uid": (int,), "batch": (int,), "status": (str,),
          "final_loss": (float, int, type(None)), "met_epsilon": (bool, type(None)), "reason": (str, type(None)),
          "config_hash": (str,), "model_id": (str,), "refine_steps": (int,), "input_digest": (str, type(None)),
          "output_digest": (str, type(None)), "output_size": (int, type(None)), "quality": (int, type(None)),
          "fallback_steps": (int,)}
# Fields a line may lack, with the value they mean there: the content binding and the storage fields came later,
# and lines written before them stay valid.
_OPTIONAL = {"input_digest": None, "output_digest": None, "output_size": None, "quality": None, "fallback_steps": 0}


def _relative_posix(value: str) -> bool:
    path = PurePosixPath(value)
    return bool(value) and not path.is_absolute() and ".." not in path.parts and "\\" not in value


def parse_entry(line: str, where: str) -> ManifestEntry:
    """One manifest line as an entry; GalleryError naming ``where`` (file and line) when it is not valid."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise GalleryError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise GalleryError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if not set(_TYPES) - set(_OPTIONAL) <= set(data) <= set(_TYPES):
        missing, extra = sorted(set(_TYPES) - set(_OPTIONAL) - set(data)), sorted(set(data) - set(_TYPES))
        raise GalleryError(f"{where}: wrong fields (missing {missing}, unexpected {extra})")
    data = _OPTIONAL | data
    for key, types in _TYPES.items():
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise GalleryError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    if data["status"] not in STATUSES:
        raise GalleryError(f"{where}: status must be one of {STATUSES}, got {data['status']!r}")
    if not _relative_posix(data["path"]):
        raise GalleryError(f"{where}: path {data['path']!r} is not a relative path inside the input folder")
    protected = data["status"] == "protected"
    if protected and (data["output"] is None or not _relative_posix(data["output"]) or data["final_loss"] is None
                      or data["met_epsilon"] is None):
        raise GalleryError(f"{where}: a protected entry needs a relative output path, final_loss and met_epsilon")
    if not protected and data["reason"] is None:
        raise GalleryError(f"{where}: a failed entry needs a reason")
    if data["uid"] < 0 or data["batch"] < 0 or data["refine_steps"] < 0 or (data["output_size"] or 0) < 0 \
            or data["fallback_steps"] < 0:
        raise GalleryError(f"{where}: uid, batch, refine_steps and fallback_steps must be non-negative")
    return ManifestEntry(**data)


class Manifest:
    """One manifest file: read (strictly), repair a cut last line, append entries durably."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[ManifestEntry]:
        """Every complete line as an entry (a cut last line, without its newline, is left out)."""
        if not self.path.exists():
            return []
        text = self.path.read_text()
        lines = text.split("\n")
        complete = lines[:-1]  # the part after the last newline is empty, or a cut line
        return [parse_entry(line, f"{self.path} line {number}") for number, line in enumerate(complete, 1)]

    def has_cut_line(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")

    def repair(self) -> bool:
        """Drop a cut last line (truncate after the last newline). Returns whether there was one."""
        if not self.has_cut_line():
            return False
        data = self.path.read_bytes()
        with open(self.path, "r+b") as stream:
            stream.truncate(data.rfind(b"\n") + 1)
            stream.flush()
            os.fsync(stream.fileno())
        return True

    def append(self, entries: list[ManifestEntry]) -> None:
        if not entries:
            return
        with open(self.path, "a") as stream:
            stream.write("".join(entry.to_line() for entry in entries))
            stream.flush()
            os.fsync(stream.fileno())


def write_manifest(path: Path, entries: list[ManifestEntry]) -> None:
    """A whole manifest, atomically (merge and refine), keeping the file's permissions."""
    text = "".join(entry.to_line() for entry in sorted(entries, key=lambda e: e.path))
    mode = os.stat(path).st_mode & 0o777 if Path(path).exists() else default_file_mode()
    write_atomic(path, lambda stream: stream.write(text.encode()), mode)
