"""The one shape of every extension registry: named, frozen records in registration order.

``Registry(kind)`` holds the records of one kind (backends, ``--model`` formats, protection methods, attackers,
dataset layouts); ``register`` refuses a name already taken, ``registry[name]`` names the choices when the name is
not there. It is a read-only mapping from name to record (``in``, iteration in registration order, ``items()``), so
the CLI reads its choices and help from it. A leaf module: the registries of every layer use it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")  # a record with a ``name``


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered (a KeyError for mapping use, a ValueError for a caller's bad argument)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class Registry(Mapping[str, T]):
    """The records of one ``kind`` (a noun for messages, e.g. "dataset layout") by name, in registration order;
    ``reserved`` names are refused (e.g. "auto", which chooses among the backends)."""

    def __init__(self, kind: str, reserved: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.reserved = reserved
        self._records: dict[str, T] = {}

    def register(self, record: T) -> T:
        """Adds ``record`` after the registered ones (its ``name`` must be new); returns it."""
        name = record.name
        if name in self._records or name in self.reserved:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._records[name] = record
        return record

    def unregister(self, name: str) -> T:
        """Takes the record ``name`` out again (a test's toy registration); returns it."""
        record = self[name]
        del self._records[name]
        return record

    def __getitem__(self, name: str) -> T:
        try:
            return self._records[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._records)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def names(self) -> tuple[str, ...]:
        return tuple(self._records)

    def records(self) -> tuple[T, ...]:
        return tuple(self._records.values())
