"""Whether the code running now is a call castore makes for real (``generator_fn``).

The lookup drivers mark the real call while it runs; the network guard reads the mark to
tell a connection castore records from one a test opens behind castore's back (the
session report lists the latter in the recording modes). A context variable follows the
call into the coroutines and callbacks of its own task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

_DEPTH: Final[ContextVar[int]] = ContextVar("castore_live_call", default=0)


@contextlib.contextmanager
def live_call() -> Iterator[None]:
    """Mark the block as a call castore makes for real."""
    token = _DEPTH.set(_DEPTH.get() + 1)
    try:
        yield
    finally:
        _DEPTH.reset(token)


def inside_live_call() -> bool:
    return _DEPTH.get() > 0
