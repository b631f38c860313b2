"""Background image I/O for the gallery: decoding and resizing ahead of the protection, encoding and writing
behind it.

Threads, not processes: PIL releases the GIL while it decodes, resizes, compresses and writes, and a thread
shares the loaded tensors without copying them. The reader keeps the next batches decoded while the current
one is protected; the writer encodes and writes each protected image, then appends its manifest line, while
the next batch is protected. So the device never waits for PIL, and a manifest line always follows its file.
(A JPEG or WebP file arrives encoded: its loss is measured on its decoded bytes before it is written.)
"""
from __future__ import annotations

import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data.images import load_image
from ..storage_format import StorageFormat
from ..atomic_file import write_atomic
from .content import bytes_digest
from .errors import GalleryError


@dataclass
class LoadedImage:
    name: str
    pixels: torch.Tensor | None  # [3, H, W] float32 in [0, 1], None when it could not be read
    error: str | None
    digest: str | None  # of the bytes decoded (None when the file could not be read at all)


class ImageReader:
    """Loads the images of the batches handed to ``prefetch`` in a thread pool; ``take`` waits for one batch."""

    def __init__(self, in_dir: Path, size: tuple[int, int], workers: int) -> None:
        self.in_dir = Path(in_dir)
        self.size = tuple(size)
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelfade-read")
        self.pending: dict[int, list[Future]] = {}

    def _load(self, name: str) -> LoadedImage:
        path = self.in_dir / name
        digest = stream = None
        try:
            data = path.read_bytes()  # read once: the digest is of exactly the bytes decoded
            digest = bytes_digest(data)
            stream = io.BytesIO(data)
            return LoadedImage(name, load_image(stream, self.size), None, digest)
        except Exception as error:  # an unreadable input is reported and skipped, the rest go on
            # the reason names the input as the manifest does (relative), not where IN lies on this machine
            reason = f"{type(error).__name__}: {error}".replace(str(path), name).replace(repr(stream), repr(name))
            return LoadedImage(name, None, reason, digest)

    def prefetch(self, key: int, names: tuple[str, ...]) -> None:
        if key not in self.pending:
            self.pending[key] = [self.pool.submit(self._load, name) for name in names]

    def take(self, key: int, names: tuple[str, ...]) -> list[LoadedImage]:
        self.prefetch(key, names)
        return [future.result() for future in self.pending.pop(key)]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class WrittenFile:
    digest: str
    size: int


def write_image_atomic(image: np.ndarray | bytes, path: Path, mode: int,
                       storage: StorageFormat = StorageFormat()) -> WrittenFile:
    """Writes an [H, W, 3] uint8 array encoded as ``storage`` (or bytes already encoded), atomically, with file
    mode ``mode``; returns its digest and size."""
    data = image if isinstance(image, bytes) else storage.encode(image)
    write_atomic(path, lambda stream: stream.write(data), mode)
    return WrittenFile(bytes_digest(data), len(data))


class ImageWriter:
    """Writes protected images in a thread pool; after each file lands, ``on_written(tag, file)`` runs
    (serialised)."""

    def __init__(self, out_dir: Path, workers: int, file_mode: int,
                 on_written: Callable[[object, WrittenFile | None], None],
                 storage: StorageFormat = StorageFormat()) -> None:
        self.out_dir = Path(out_dir)
        self.storage = storage
        self.file_mode = file_mode
        self.on_written = on_written
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelfade-write")
        self.lock = threading.Lock()
        self.futures: list[Future] = []

    def _write(self, image: np.ndarray | bytes, relative: str, tag: object) -> None:
        written = write_image_atomic(image, self.out_dir / relative, self.file_mode, self.storage)
        with self.lock:
            self.on_written(tag, written)

    def record(self, tag: object) -> None:
        """``on_written(tag, None)`` for an image with nothing to write (a failed input), serialised with the
        writes."""
        with self.lock:
            self.on_written(tag, None)

    def submit(self, image: np.ndarray | bytes, relative: str, tag: object) -> None:
        """Write ``image``: an array to encode, or a file already encoded."""
        self.futures.append(self.pool.submit(self._write, image, relative, tag))

    def raise_errors(self, wait: bool = False) -> None:
        """Raise the first failed write (e.g. a full disk) as a GalleryError; with ``wait``, wait for every write."""
        remaining = []
        for future in self.futures:
            if not (wait or future.done()):
                remaining.append(future)
                continue
            try:
                future.result()
            except OSError as error:
                raise GalleryError(f"cannot write into {self.out_dir}: {error}. Every image written so far is "
                                   f"listed in the manifest; fix the cause, then run again with --resume") from None
        self.futures = remaining

    def close(self) -> None:
        self.pool.shutdown(wait=True)
