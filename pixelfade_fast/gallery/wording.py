"""Counts and lists of file names in messages: "1 image", "3 images", "a, b, c and 7 more"."""
from __future__ import annotations

SHOWN = 5


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {words or word + 's'}"


def named(names: list[str], shown: int = SHOWN) -> str:
    """The first ``shown`` names, then how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
