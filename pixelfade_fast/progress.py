"""Progress reporting for long work: a tqdm bar (rate, ETA) on stderr, or the caller's own callback."""
from __future__ import annotations

import sys
from typing import Callable, Union

from tqdm import tqdm

ProgressArg = Union[None, bool, Callable[[float, int], None]]


class ProgressBar:
    """``bar(done, total)`` moves a tqdm bar to ``done`` (fractions allowed: a batch advances step by step).
    With ``close_at_total`` the bar closes itself when ``done`` reaches ``total``; a caller that sets a postfix
    after the last step (counts known only then) passes False and closes the bar itself."""

    def __init__(self, total: int, label: str = "", unit: str = "img", stream=None, close_at_total: bool = True) -> None:
        self.close_at_total = close_at_total
        self.bar = tqdm(total=total, desc=label, unit=unit, file=stream or sys.stderr, dynamic_ncols=True,
                        smoothing=0.1, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}, "
                                                  "{rate_fmt}{postfix}]")

    def __call__(self, done: float, total: int | None = None) -> None:
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        if self.close_at_total and done >= self.bar.total:
            self.close()

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        self.bar.close()


def make_progress(progress: ProgressArg, total: int, label: str, unit: str = "img") -> Callable[[float, int], None]:
    """A callback for ``progress``: None shows a bar when stderr is a terminal, True always, False never."""
    if callable(progress):
        return progress
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if show:
        return ProgressBar(total, label, unit)
    return lambda done, total: None
