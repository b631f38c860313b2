"""A small text progress bar (stderr) with a rate, used by the engine and the command line."""
from __future__ import annotations

import sys
import time
from typing import Callable, Union

ProgressArg = Union[None, bool, Callable[[int, int], None]]


class ProgressBar:
    """Prints ``label [#####.....] done/total rate unit/s`` on one line, redrawn at most every 0.2 s."""

    def __init__(self, total: int, label: str = "", unit: str = "img", stream=None, width: int = 30) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(int(total), 1)
        now = time.perf_counter()
        finished = done >= self.total
        if not finished and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        filled = int(self.width * min(done, self.total) / self.total)
        rate = done / max(now - self.start, 1e-9)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {rate:.2f} {self.unit}/s")
        if finished:
            self.stream.write("\n")
        self.stream.flush()


def make_progress(progress: ProgressArg, total: int, label: str) -> Callable[[int, int], None]:
    """A callback for ``progress``: None shows a bar when stderr is a terminal, True always, False never."""
    if callable(progress):
        return progress
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if show:
        return ProgressBar(total, label)
    return lambda done, total: None
