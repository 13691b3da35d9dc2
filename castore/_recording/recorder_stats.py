"""``Recorder.get_stats()``'s answer: a recorder's :class:`Tally`, typed, yet read as the
seeds' recorder's dict was (``stats["cache_hits"]``, ``dict(stats)``).

Its own module, imported when a test first asks: a replay never does, and on Python 3.11
a dataclass costs every import of castore a millisecond or more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

from castore._recording.tally import Tally
from castore._storage.public_names import present_as_public


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


present_as_public(RecorderStats)
