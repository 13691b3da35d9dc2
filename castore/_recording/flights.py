"""Recordings in flight in this process: one caller per key records, the others wait.

Two tests (threads, or tasks of one event loop) asking for the same missing key must not
both call a 30-second API. The first to board a key's flight leads and records; the rest
wait for it to land, then replay what it recorded (or see its error). Across processes the
store's per-key lock does the same (``Namespace.key_lock``).
"""

from __future__ import annotations

import threading


class Flight:
    """One recording of a key in progress: waiters block on ``done``, then replay or
    raise ``error``. A plain class, as a dataclass costs every import a millisecond."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class Flights:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flying: dict[str, Flight] = {}

    def board(self, key: str) -> tuple[Flight, bool]:
        """The key's flight, and True if this caller leads it (and so must :meth:`land` it)."""
        with self._lock:
            flight = self._flying.get(key)
            if flight is not None:
                return flight, False
            flight = self._flying[key] = Flight()
            return flight, True

    def land(self, key: str, flight: Flight, error: BaseException | None) -> None:
        """End the leader's flight: waiters wake and replay, or raise ``error``."""
        flight.error = error
        flight.done.set()
        with self._lock:
            del self._flying[key]
