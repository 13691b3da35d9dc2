"""For a key with no recording: the recorded keys most like it, and what differs.

A changed prompt under ``request_key`` gives a fresh hash, and "no recording for key
'gpt-4o-mini-2269a1…'" alone tells nobody what changed. The recorded keys nearest to the
missing one (by the call's metadata when it passed some, else by the key's text), each
with the metadata fields that differ, usually do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any, Final

from castore._recording.staleness import changed_fields
from castore._storage.index import Entry

SHOWN: Final = 3
#: Entries compared at most: a miss in a namespace of 100,000 keys stays quick.
MAX_COMPARED: Final = 5000


def nearest_recordings(
    entries: Mapping[str, Entry], key: str, metadata: Mapping[str, Any] | None
) -> list[str]:
    """Up to :data:`SHOWN` lines, nearest first: ``key (field: recorded → now; …)``."""
    if not entries:
        return []
    wanted = _text(metadata) if metadata else ""
    candidates = list(entries.items())[:MAX_COMPARED]

    def likeness(item: tuple[str, Entry]) -> float:
        other_key, entry = item
        by_key = SequenceMatcher(None, key, other_key).ratio()
        if not wanted:
            return by_key
        by_metadata = SequenceMatcher(None, wanted, _text(entry.metadata)).ratio()
        return 0.3 * by_key + 0.7 * by_metadata

    ranked = sorted(candidates, key=likeness, reverse=True)[:SHOWN]
    return [_describe(other_key, entry, metadata) for other_key, entry in ranked]


def _describe(other_key: str, entry: Entry, metadata: Mapping[str, Any] | None) -> str:
    if not metadata:
        return other_key
    differences = changed_fields(entry.metadata, metadata)
    if not differences:
        return f"{other_key} (same metadata)"
    return f"{other_key} ({'; '.join(differences[:3])})"


def _text(metadata: Mapping[str, Any] | None) -> str:
    try:
        return json.dumps(metadata or {}, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(metadata)
