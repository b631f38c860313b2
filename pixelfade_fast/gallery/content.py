"""Content binding: a digest of a file's bytes, so a run knows the exact inputs it protected and outputs it wrote.

blake2b (hashlib, in C, releases the GIL) is the fastest cryptographic hash in the standard library; 128 bits
are plenty to tell two files apart. Names alone are not enough: another image under the same name would be
refined towards the wrong person's features, and a damaged PNG would stay in a resumed gallery.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DIGEST_BYTES = 16


def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).hexdigest()


def file_digest(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, lambda: hashlib.blake2b(digest_size=DIGEST_BYTES)).hexdigest()


def file_digests(paths: list[Path], workers: int = 4) -> list[str | None]:
    """The digest of every file (None where it cannot be read), hashed by a few threads (I/O overlaps hashing)."""
    def one(path: Path) -> str | None:
        try:
            return file_digest(path)
        except OSError:
            return None

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelfade-digest") as pool:
        return list(pool.map(one, paths))
