"""How long upkeep loops report their progress: the CLI passes a progress bar, tests nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
#: Wraps a long loop, e.g. with a progress bar: (items, how many, label) -> items.
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def no_progress(items: Iterable[T], total: int, label: str) -> Iterable[T]:
    return items
