"""What a running test session lends the recorders tests make by hand.

``Recorder("tests/fixtures/castore", ns)`` written inside a test resolves a relative root
against the session's rootdir (not the current directory, so ``cd tests && pytest`` finds
the same store), and a recorder on the session's own store follows the session's mode
(``RECORD_FIXTURES``, ``--castore-mode``) and reports to it.

The session is lent through a context variable, set when the session is configured and
reset when it ends: a nested session (pytester) lends its own and gives the outer one
back, and nothing module-global outlives a session. A recorder made in a thread the test
started itself sees no session (threads start with an empty context) and behaves as it
would in a script: pass it the ``recorder`` fixture's store, or make it in the test.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any, Final, NamedTuple

from castore._recording.modes import Mode


class Ambient(NamedTuple):
    rootdir: Path
    store_root: Path
    listener: Any
    """The session's ``RecordingListener`` (typed loosely: the recorder module, which
    defines that protocol, imports this one)."""
    mode: Callable[[], Mode]


_SESSION: Final[ContextVar[Ambient | None]] = ContextVar("castore_session", default=None)


def lend(ambient: Ambient) -> Token[Ambient | None]:
    """Lend ``ambient`` to the recorders made from now on; the token gives it back."""
    return _SESSION.set(ambient)


def take_back(token: Token[Ambient | None]) -> None:
    _SESSION.reset(token)


def lent() -> Ambient | None:
    """The session lent to recorders, if one is."""
    return _SESSION.get()
