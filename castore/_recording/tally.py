"""What lookups came to: one set of counts, kept per recorder and per session alike.

A :class:`Tally` is what a recorder keeps (``get_stats``) and what the session's usage is
made of (``_pytest.usage.Usage``): one place says what a replay, a recording and a miss
count for. ``get_stats()`` answers with a ``recorder_stats.RecorderStats`` made from one.
"""

from __future__ import annotations

from castore._storage.index import Entry


class Tally:
    """Counts of lookups. A plain class, not a dataclass: a recorder makes one per test,
    and on Python 3.11 each dataclass costs every import of castore a millisecond."""

    __slots__ = (
        "hits",
        "misses",
        "recorded",
        "recorded_seconds",
        "saved_seconds",
        "unchanged",
    )

    def __init__(
        self,
        *,
        hits: int = 0,
        misses: int = 0,
        recorded: int = 0,
        unchanged: int = 0,
        saved_seconds: float = 0.0,
        recorded_seconds: float = 0.0,
    ) -> None:
        self.hits = hits
        self.misses = misses
        self.recorded = recorded
        self.unchanged = unchanged
        """Of the recorded: answers the same as their recording but for volatile parts, kept."""
        self.saved_seconds = saved_seconds
        """What the replayed calls took when they were recorded: time not spent now."""
        self.recorded_seconds = recorded_seconds
        """How long the real calls of the recorded took."""

    def replayed(self, entry: Entry) -> None:
        self.hits += 1
        self.saved_seconds += entry.duration or 0.0

    def record(self, entry: Entry, *, unchanged: bool) -> None:
        self.recorded += 1
        self.recorded_seconds += entry.duration or 0.0
        if unchanged:
            self.unchanged += 1

    def missed(self) -> None:
        self.misses += 1

    def add(self, other: Tally) -> None:
        for name in Tally.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
