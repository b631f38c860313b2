"""Is every output the manifest lists still the file the run wrote? Present, of its size, with its digest.

Lines written before the content binding carry no digest: their output is checked for presence and for decoding
as an image (that catches a truncated PNG; only the digest catches other damage). The checks run in a few
threads (hashing releases the GIL), so resuming a 10k-image gallery starts in seconds (bench/bench_resume.py).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from .content import file_digests
from .manifest import ManifestEntry


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:  # any decoding error means damaged
        return False


def damaged_outputs(out_dir: Path, entries: list[ManifestEntry], workers: int = 4) -> list[tuple[str, str]]:
    """(input path, what is wrong) for every protected entry whose output is missing or not what was written."""
    protected = [e for e in entries if e.status == "protected"]
    sizes = {}
    for entry in protected:
        try:
            sizes[entry.path] = (out_dir / entry.output).stat().st_size
        except OSError:
            sizes[entry.path] = None
    to_hash = [e for e in protected if e.output_digest is not None and sizes[e.path] == e.output_size]
    digests = dict(zip((e.path for e in to_hash), file_digests([out_dir / e.output for e in to_hash], workers)))
    damaged = []
    for entry in protected:
        size = sizes[entry.path]
        if size is None:
            damaged.append((entry.path, "missing"))
        elif entry.output_digest is None:
            if not _decodes(out_dir / entry.output):
                damaged.append((entry.path, "does not decode"))
        elif size != entry.output_size:
            damaged.append((entry.path, f"{size} bytes, {entry.output_size} written"))
        elif digests[entry.path] != entry.output_digest:
            damaged.append((entry.path, "changed since it was written (digest)"))
    return damaged
