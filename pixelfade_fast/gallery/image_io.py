"""Background image I/O for the gallery: decoding and resizing ahead of the protection, PNG encoding behind it.

Threads, not processes: PIL releases the GIL while it decodes, resizes, compresses and writes, and a thread
shares the loaded tensors without copying them. The reader keeps the next batches decoded while the current
one is protected; the writer encodes and writes each protected image, then appends its manifest line, while
the next batch is protected. So the device never waits for PIL, and a manifest line always follows its PNG.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data.images import load_image
from .atomic import write_atomic
from .errors import GalleryError


@dataclass
class LoadedImage:
    name: str
    pixels: torch.Tensor | None  # [3, H, W] float32 in [0, 1], None when it could not be read
    error: str | None


class ImageReader:
    """Loads the images of the batches handed to ``prefetch`` in a thread pool; ``take`` waits for one batch."""

    def __init__(self, in_dir: Path, size: tuple[int, int], workers: int) -> None:
        self.in_dir = Path(in_dir)
        self.size = tuple(size)
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelfade-read")
        self.pending: dict[int, list[Future]] = {}

    def _load(self, name: str) -> LoadedImage:
        try:
            return LoadedImage(name, load_image(self.in_dir / name, self.size), None)
        except Exception as error:  # an unreadable input is reported and skipped, the rest go on
            return LoadedImage(name, None, f"{type(error).__name__}: {error}")

    def prefetch(self, key: int, names: tuple[str, ...]) -> None:
        if key not in self.pending:
            self.pending[key] = [self.pool.submit(self._load, name) for name in names]

    def take(self, key: int, names: tuple[str, ...]) -> list[LoadedImage]:
        self.prefetch(key, names)
        return [future.result() for future in self.pending.pop(key)]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def write_png_atomic(array: np.ndarray, path: Path, mode: int) -> None:
    """Writes an [H, W, 3] uint8 array as a PNG, atomically, with file mode ``mode``."""
    write_atomic(path, lambda stream: Image.fromarray(array).save(stream, format="PNG"), mode)


def to_uint8_images(pixels: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] pixels in [0, 1] (any device) -> [B, H, W, 3] uint8 on the host, in one transfer."""
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


class PngWriter:
    """Writes protected images in a thread pool; after each PNG lands, ``on_written(tag)`` runs (serialised)."""

    def __init__(self, out_dir: Path, workers: int, file_mode: int, on_written: Callable[[object], None]) -> None:
        self.out_dir = Path(out_dir)
        self.file_mode = file_mode
        self.on_written = on_written
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pixelfade-write")
        self.lock = threading.Lock()
        self.futures: list[Future] = []

    def _write(self, array: np.ndarray, relative: str, tag: object) -> None:
        write_png_atomic(array, self.out_dir / relative, self.file_mode)
        with self.lock:
            self.on_written(tag)

    def record(self, tag: object) -> None:
        """``on_written(tag)`` for an image with nothing to write (a failed input), serialised with the writes."""
        with self.lock:
            self.on_written(tag)

    def submit(self, array: np.ndarray, relative: str, tag: object) -> None:
        self.futures.append(self.pool.submit(self._write, array, relative, tag))

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
