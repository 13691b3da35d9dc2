"""What lookups came to: one set of counts, kept per recorder and per session alike.

A :class:`Tally` is what a recorder keeps (``get_stats``) and what the session's usage is
made of (``_pytest.usage.Usage``): one place says what a replay, a recording and a miss
count for. :class:`RecorderStats` is ``get_stats()``'s answer: typed, yet read as the
seeds' recorder's dict was (``stats["cache_hits"]``, ``dict(stats)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

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


@dataclass(frozen=True)
class RecorderStats(Mapping[str, object]):
    """A recorder's counts (``Recorder.get_stats()``), by attribute or by the seeds' keys."""

    cache_hits: int
    cache_misses: int
    recorded: int
    total_requests: int
    hit_rate: float
    time_saved: float
    """Seconds of real calls the replays avoided (as long as they took when recorded)."""
    num_cached_responses: int
    mode: str
    unchanged: int = 0
    """Of ``recorded``: re-recorded answers kept as they were (only volatile parts differed)."""

    def __getitem__(self, name: str) -> object:
        if name not in _NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


_NAMES = tuple(part.name for part in fields(RecorderStats))


def stats_of(tally: Tally, *, cached: int, mode: str) -> RecorderStats:
    """A recorder's :class:`RecorderStats` from its tally."""
    total = tally.hits + tally.misses
    return RecorderStats(
        cache_hits=tally.hits,
        cache_misses=tally.misses,
        recorded=tally.recorded,
        total_requests=total,
        hit_rate=tally.hits / total if total else 0.0,
        time_saved=tally.saved_seconds,
        num_cached_responses=cached,
        mode=mode,
        unchanged=tally.unchanged,
    )
