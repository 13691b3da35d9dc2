"""One namespace's index: a small JSON file mapping keys to blobs and their metadata.

The layout is chosen for git. Keys are sorted and each entry sits on one line, so
re-recording a key changes one line and adding keys adds lines; the file is plain UTF-8
JSON any tool can read. :func:`merge_entries` is the three-way merge shared by concurrent
writers (merge on write) and by the git merge driver.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, NamedTuple

from castore._storage.codec import VALUE_FORMAT, first_offender
from castore._storage.json_documents import parse_document
from castore._storage.layout import MAX_INDEX_BYTES, check_format_version, is_digest
from castore._storage.names import MAX_KEY_LENGTH
from castore._storage.public_names import present_as_public
from castore._storage.safe_files import FileRefused, read_store_file
from castore.errors import IndexFormatError, UnencodableValueError, UnsupportedFormatError

#: Version of the index file layout, written at the top of every index.
INDEX_FORMAT: Final = 1


class StreamKind(StrEnum):
    """How a streamed response was consumed when it was recorded, so replay gives it back
    the same way: an iterator (``sync``) or an async iterator (``async``)."""

    SYNC = "sync"
    ASYNC = "async"


@dataclass(frozen=True, slots=True)
class Entry:
    """What the index says about one recorded key."""

    blob: str
    """blake3 digest of the value's msgpack bytes: the blob file's name."""
    size: int
    """Size of the value's msgpack bytes (uncompressed)."""
    recorded_at: dt.datetime
    """When the value was recorded (UTC)."""
    duration: float | None = None
    """Seconds the original call took: what every replay saves."""
    schema: str | int | None = None
    """The schema version the recorder declared when recording."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The user's metadata (JSON types only): never used for lookup."""
    stream: StreamKind | None = None
    """Set when the value is the chunks of a streamed response (see :class:`StreamKind`)."""
    format: int = VALUE_FORMAT
    """Version of the value encoding the blob was written with."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "blob": self.blob,
            "format": self.format,
            "recorded_at": format_time(self.recorded_at),
            "size": self.size,
        }
        if self.duration is not None:
            data["duration"] = round(self.duration, 3)
        if self.schema is not None:
            data["schema"] = self.schema
        if self.metadata:
            data["metadata"] = self.metadata
        if self.stream is not None:
            data["stream"] = self.stream
        return data


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_metadata(key: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata lives in the JSON index, so it must be plain JSON; return a copy."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise UnencodableValueError(key, type(metadata).__qualname__, "", what="metadata")
    try:
        return dict(json.loads(json.dumps(dict(metadata), allow_nan=False)))
    except (TypeError, ValueError) as error:
        found = first_offender(metadata, _non_json_leaf, _non_json_key, (list, tuple))
        location, type_name = found or ("", str(error))
        raise UnencodableValueError(key, type_name, location, what="metadata") from None


def _non_json_key(name: Any) -> str:
    if name is None or isinstance(name, str | int | float | bool):
        return ""
    return type(name).__qualname__


def _non_json_leaf(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "non-finite float"
    if value is None or isinstance(value, str | int | float | bool):
        return ""
    return type(value).__qualname__


_STREAM_KINDS: Final = tuple(kind.value for kind in StreamKind)


def _bad(path: str | os.PathLike[str], key: str, detail: str) -> IndexFormatError:
    return IndexFormatError(Path(path), f"entry {key!r}: {detail}")


def entry_from_json(data: object, path: str | os.PathLike[str], key: str) -> Entry:
    """Validate one entry as read from ``path``; every problem names the file and the key.

    A session reads every index it replays from, thousands at 10x, so the checks are
    plain expressions (no closure, no tuple built per entry)."""

    if not isinstance(data, dict):
        raise _bad(path, key, f"expected an object, found {type(data).__name__}")
    blob = data.get("blob")
    if not is_digest(blob):
        raise _bad(path, key, f"'blob' must be a 64-hex blake3 digest, found {blob!r}")
    size = data.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(path, key, f"'size' must be a non-negative integer, found {size!r}")
    entry_format = data.get("format", VALUE_FORMAT)
    if not isinstance(entry_format, int) or isinstance(entry_format, bool):
        raise _bad(path, key, f"'format' must be an integer, found {entry_format!r}")
    if entry_format > VALUE_FORMAT:
        raise UnsupportedFormatError(Path(path), f"{entry_format} (entry {key!r})", VALUE_FORMAT)
    try:
        recorded_at = dt.datetime.fromisoformat(data["recorded_at"])
        if recorded_at.tzinfo is None:
            recorded_at = recorded_at.replace(tzinfo=dt.UTC)
        recorded_at.astimezone(dt.UTC)  # an offset can push a time past year 9999
    except (KeyError, TypeError, ValueError, OverflowError):
        found = data.get("recorded_at")
        raise _bad(path, key, f"'recorded_at' must be an ISO 8601 time, found {found!r}") from None
    duration = data.get("duration")
    if duration is not None and (
        not isinstance(duration, int | float)
        or isinstance(duration, bool)
        or not 0 <= duration < math.inf
    ):
        raise _bad(path, key, f"'duration' must be a number of seconds, found {duration!r}")
    schema = data.get("schema")
    if schema is not None and (not isinstance(schema, str | int) or isinstance(schema, bool)):
        raise _bad(path, key, f"'schema' must be a string or an integer, found {schema!r}")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _bad(path, key, f"'metadata' must be an object, found {type(metadata).__name__}")
    stream = data.get("stream")
    if stream is not None and stream not in _STREAM_KINDS:
        raise _bad(path, key, f"'stream' must be one of {_STREAM_KINDS}, found {stream!r}")
    return Entry(
        # Interned, as the pack tables' digests are: a replay's lookup of the entry's blob
        # in the table then matches by identity, one memory access fewer at 100,000 blobs.
        blob=sys.intern(blob),
        size=size,
        recorded_at=recorded_at,
        duration=None if duration is None else float(duration),
        schema=schema,
        metadata=metadata,
        stream=None if stream is None else StreamKind(stream),
        format=entry_format,
    )


def check_entry(key: str, entry: Entry) -> None:
    """Refuse, before anything is written, an entry that :func:`entry_from_json` would
    refuse when the index is read back (a NaN duration, a list as schema): every path that
    writes an index applies the checks every reader applies."""
    try:
        entry_from_json(entry.to_json(), Path("(new entry)"), key)
    except IndexFormatError as error:
        raise UnencodableValueError(
            key, error.detail.split(": ", 1)[-1], "", what="entry"
        ) from None


def parse_index(raw: bytes, path: str | os.PathLike[str]) -> dict[str, Entry]:
    """Parse and validate an index file's bytes. ``path`` names the file in errors only
    (a replay reads thousands of indexes: no ``Path`` is built for one that parses)."""
    document = parse_document(raw, path)
    check_format_version(
        document,
        "castore_index",
        INDEX_FORMAT,
        path,
        missing="not a castore index (no 'castore_index' version field)",
    )
    entries = document.get("entries")
    if not isinstance(entries, dict):
        raise IndexFormatError(Path(path), "'entries' must be an object mapping keys to entries")
    for key in entries:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise IndexFormatError(
                Path(path),
                f"key {key[:60]!r} is {len(key)} characters long; castore writes keys of "
                f"1 to {MAX_KEY_LENGTH} characters (it shortens longer ones), so no test "
                "could ever read this entry",
            )
    return {key: entry_from_json(data, path, key) for key, data in entries.items()}


def load_index(path: str | Path) -> dict[str, Entry]:
    """Read an index file; a missing file is an empty namespace.

    A symlink, a special file or an index over :data:`MAX_INDEX_BYTES` is refused by name."""
    try:
        raw = read_store_file(path, MAX_INDEX_BYTES)
    except FileRefused as refused:
        raise IndexFormatError(Path(path), refused.reason) from None
    if raw is None:
        return {}
    return parse_index(raw, path)


def entry_line(key: str, entry: Entry) -> str:
    """One entry as it appears in the index file (without indentation or comma)."""
    return (
        json.dumps(key, ensure_ascii=False)
        + ": "
        + json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True, allow_nan=False)
    )


#: key -> (entry, its line): lets a rewrite of a big index re-serialize only what changed.
LineMemo = dict[str, tuple[Entry, str]]


def dump_index(namespace: str, entries: Mapping[str, Entry], memo: LineMemo | None = None) -> bytes:
    """Stable bytes for an index: sorted keys, one entry per line, a trailing newline."""
    memo = {} if memo is None else memo
    lines = []
    for key in sorted(entries):
        entry = entries[key]
        known = memo.get(key)
        if known is None or known[0] is not entry:
            known = (entry, entry_line(key, entry))
            memo[key] = known
        lines.append(f"    {known[1]}")
    header = (
        "{\n"
        f'  "castore_index": {INDEX_FORMAT},\n'
        f'  "namespace": {json.dumps(namespace, ensure_ascii=False)},\n'
        '  "entries": {'
    )
    body = ",\n".join(lines)
    text = f"{header}\n{body}\n  }}\n}}\n" if lines else f"{header}}}\n}}\n"
    return text.encode("utf-8")


class Conflict(NamedTuple):
    """Both sides recorded ``key`` with different values since their common base."""

    key: str
    ours: Entry
    theirs: Entry


def merge_entries(
    base: Mapping[str, Entry], ours: Mapping[str, Entry], theirs: Mapping[str, Entry]
) -> tuple[dict[str, Entry], list[Conflict]]:
    """Three-way merge of a namespace: the union of both sides' changes.

    A key changed on one side only takes that change. When both sides changed a key:
    the same blob (an equal value) is no conflict, the later recording wins; a deletion
    against a re-recording keeps the recording (castore never drops recorded data on a
    merge); two different blobs are a true conflict, reported, with ours kept.
    """
    merged: dict[str, Entry] = {}
    conflicts: list[Conflict] = []
    for key in sorted(set(base) | set(ours) | set(theirs)):
        was, mine, other = base.get(key), ours.get(key), theirs.get(key)
        if other in (mine, was):
            chosen = mine
        elif mine == was:
            chosen = other
        elif mine is None or other is None:
            chosen = mine or other
        elif mine.blob == other.blob:
            chosen = max(mine, other, key=lambda entry: entry.recorded_at)
        else:
            conflicts.append(Conflict(key, mine, other))
            chosen = mine
        if chosen is not None:
            merged[key] = chosen
    return merged, conflicts


present_as_public(Entry, StreamKind)
