"""How the recorded answers changed between two versions of a store (``castore diff``).

The two sides are anything that lists namespaces' entries and reads values by digest: a
store at a git revision (``revisions``) or the working tree's store. Entries are matched
by namespace and key. An entry whose blob digest is the same on both sides is unchanged
and never decoded; only entries whose digest changed are read and compared
(``value_diff``), with the ignore patterns applied. An entry that was re-recorded but
whose answer differs only in ignored paths (ids, timestamps) counts as unchanged: a
re-recording that changed nothing anyone cares about reviews as nothing.

``recorded_at``, ``duration`` and ``size`` change on every re-recording: they are shown
for changed entries, never a change by themselves. The schema version, the stream kind,
the request fingerprint and the user's other metadata fields are.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from castore._recording.answer_views import readable
from castore._recording.json_paths import IgnorePattern
from castore._recording.usertypes import PRIVATE_FIELD, TYPE_TAG, TYPES_FIELD
from castore._recording.volatile import DEFAULT as DEFAULT_VOLATILITY
from castore._recording.volatile import Volatility
from castore._storage.index import Entry, format_time
from castore._upkeep.jsonview import to_json_view
from castore._upkeep.value_diff import Change, ValueDiff, diff_streams, diff_values
from castore.errors import CastoreError

#: The wrapper of an auto-typed value (``_recording.usertypes``), unwrapped for diffs so
#: that paths read as the object's (``$.choices[0]…``) and ``_request_id`` is one more.
_WRAPPER_KEYS: Final = frozenset({TYPE_TAG, "value", PRIVATE_FIELD, TYPES_FIELD})
#: Below this many re-recorded entries, comparing in one process is quicker.
_PARALLEL_AT: Final = 64


#: An entry recorded on both sides under other blobs: (namespace, key, old, new).
_Pair = tuple[str, str, Entry, Entry]


class StoreSide(Protocol):
    """One version of a store, as the diff needs it."""

    @property
    def label(self) -> str:
        """How the report names this side: ``HEAD~1 (3f9a2c…)``, ``working tree``."""

    def namespaces(self) -> Mapping[str, Mapping[str, Entry]]: ...

    def prepare(self, digests: Iterable[str]) -> None:
        """Make the blobs of ``digests`` readable (a revision fetches them in one round)."""

    def read_value(self, digest: str) -> Any: ...


@dataclass
class EntryDiff:
    namespace: str
    key: str
    status: Literal["changed", "added", "removed", "unchanged"]
    old: Entry | None
    new: Entry | None
    value: ValueDiff | None = None
    """The value's changes; None when only metadata changed (same blob) or for adds."""
    metadata: list[Change] = field(default_factory=list)
    """Changed metadata: schema, stream, request fingerprint, user fields (significant),
    then recorded_at and duration (shown, never a change alone)."""
    problem: str | None = None
    """Why a value could not be read and compared (a blob missing at a revision…)."""
    old_key: str | None = None
    """A changed request: the key its earlier recording had (``castore_http`` keys hold a
    hash of the request, so a changed prompt records under a new key)."""
    request: list[Change] = field(default_factory=list)
    """A changed request: how the request changed (its metadata: URL, body fields)."""

    @property
    def share(self) -> float:
        """The share of the text that changed; 1 for an unreadable value."""
        if self.problem is not None:
            return 1.0
        return self.value.share if self.value is not None else 0.0


@dataclass
class NamespaceDiff:
    namespace: str
    changed: list[EntryDiff] = field(default_factory=list)
    added: list[EntryDiff] = field(default_factory=list)
    removed: list[EntryDiff] = field(default_factory=list)
    unchanged: int = 0
    rerecorded: int = 0
    """Of the unchanged: re-recorded, with no change outside the ignored paths."""

    @property
    def has_changes(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    @property
    def words(self) -> int:
        return sum(entry.value.words for entry in self.changed if entry.value is not None)

    @property
    def changed_words(self) -> int:
        return sum(entry.value.changed_words for entry in self.changed if entry.value)

    @property
    def share(self) -> float:
        """The share of the text of the changed answers that changed."""
        return self.changed_words / self.words if self.words else float(bool(self.changed))


@dataclass
class StoreDiff:
    old_label: str
    new_label: str
    ignore: list[str]
    namespaces: list[NamespaceDiff]

    @property
    def has_changes(self) -> bool:
        return any(namespace.has_changes for namespace in self.namespaces)

    def count(self, what: Literal["changed", "added", "removed"]) -> int:
        return sum(len(getattr(namespace, what)) for namespace in self.namespaces)

    @property
    def unchanged(self) -> int:
        return sum(namespace.unchanged for namespace in self.namespaces)

    @property
    def rerecorded(self) -> int:
        return sum(namespace.rerecorded for namespace in self.namespaces)

    @property
    def share(self) -> float:
        words = sum(namespace.words for namespace in self.namespaces)
        changed = sum(namespace.changed_words for namespace in self.namespaces)
        return changed / words if words else float(self.count("changed") > 0)

    def largest_changes(self) -> list[EntryDiff]:
        """Every changed entry, the largest share of changed text first."""
        entries = [entry for namespace in self.namespaces for entry in namespace.changed]
        return sorted(entries, key=lambda entry: (-entry.share, entry.namespace, entry.key))


def diff_stores(
    old: StoreSide,
    new: StoreSide,
    ignore: Sequence[IgnorePattern] = (),
    *,
    namespaces: Sequence[str] | None = None,
    workers: int | None = None,
    volatility: Volatility | None = DEFAULT_VOLATILITY,
) -> StoreDiff:
    """Compare two versions of a store, namespace by namespace and key by key. An answer
    that changed only in ``volatility``'s parts (dates, request ids, per-call ids) is
    unchanged; None compares every part."""
    old_spaces, new_spaces = old.namespaces(), new.namespaces()
    names = sorted(old_spaces.keys() | new_spaces.keys())
    if namespaces is not None:
        wanted = set(namespaces)
        names = [name for name in names if name in wanted]
    results = {name: NamespaceDiff(name) for name in names}
    to_compare: list[_Pair] = []
    requests: list[tuple[EntryDiff, EntryDiff]] = []
    for name in names:
        result = results[name]
        before, after = old_spaces.get(name, {}), new_spaces.get(name, {})
        for key in sorted(before.keys() | after.keys()):
            was, now = before.get(key), after.get(key)
            if now is None:
                result.removed.append(EntryDiff(name, key, "removed", was, None))
            elif was is None:
                result.added.append(EntryDiff(name, key, "added", None, now))
            elif was.blob == now.blob:
                significant, shown = _metadata_changes(was, now)
                if significant:
                    result.changed.append(
                        EntryDiff(name, key, "changed", was, now, metadata=significant + shown)
                    )
                else:
                    result.unchanged += 1
            else:
                to_compare.append((name, key, was, now))
        requests += _changed_requests(result, before, after)
    old.prepare(
        [was.blob for _, _, was, _ in to_compare]
        + [pair[1].old.blob for pair in requests if pair[1].old is not None]
    )
    new.prepare(now.blob for _, _, _, now in to_compare)
    for added, removed in requests:
        result = results[added.namespace]
        result.changed.append(_request_change(old, new, added, removed, volatility))

    count = workers if workers is not None else min(4, os.cpu_count() or 1)
    work = (old, new, ignore, to_compare, volatility)
    if count > 1 and len(to_compare) >= _PARALLEL_AT and _CAN_FORK:
        compared = _compare_in_processes(work, count)
    else:
        compared = [_compare_entry(old, new, item, ignore, volatility) for item in to_compare]
    for entry in compared:
        result = results[entry.namespace]
        if entry.status == "changed":
            result.changed.append(entry)
        else:
            result.unchanged += 1
            result.rerecorded += 1
    for result in results.values():
        result.changed.sort(key=lambda entry: entry.key)
    return StoreDiff(
        old.label, new.label, [pattern.text for pattern in ignore], list(results.values())
    )


#: Comparing is pure Python (threads would share one GIL): with fork, worker processes
#: inherit both sides as they are, temporary stores included, and nothing is pickled
#: but the indexes of the pairs and the results.
_CAN_FORK: Final = "fork" in multiprocessing.get_all_start_methods()
_Work = tuple[StoreSide, StoreSide, Sequence[IgnorePattern], list[_Pair], "Volatility | None"]
_inherited: list[_Work] = []


def _compare_in_processes(work: _Work, count: int) -> list[EntryDiff]:
    _inherited[:] = [work]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            chunk = max(_PARALLEL_AT, len(work[3]) // (count * 8))
            return list(pool.map(_compare_inherited, range(len(work[3])), chunksize=chunk))
    finally:
        _inherited.clear()


def _compare_inherited(position: int) -> EntryDiff:
    old, new, ignore, pairs, volatility = _inherited[0]
    return _compare_entry(old, new, pairs[position], ignore, volatility)


def _compare_entry(
    old: StoreSide,
    new: StoreSide,
    item: _Pair,
    ignore: Sequence[IgnorePattern],
    volatility: Volatility | None,
) -> EntryDiff:
    """The diff of one re-recorded entry; status "unchanged" when nothing significant
    changed (the caller counts it)."""
    name, key, was, now = item
    significant, shown = _metadata_changes(was, now)
    try:
        before, after = old.read_value(was.blob), new.read_value(now.blob)
    except CastoreError as error:
        problem = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        return EntryDiff(
            name, key, "changed", was, now, metadata=significant + shown, problem=problem
        )
    if volatility is not None:
        before, after = volatility.stripped(before), volatility.stripped(after)
    value = _value_diff(before, after, was.stream is not None and now.stream is not None, ignore)
    if not value.changes and not significant:
        return EntryDiff(name, key, "unchanged", was, now)
    return EntryDiff(name, key, "changed", was, now, value=value, metadata=significant + shown)


def _value_diff(
    before: Any, after: Any, streams: bool, ignore: Sequence[IgnorePattern]
) -> ValueDiff:
    if streams and isinstance(before, list | tuple) and isinstance(after, list | tuple):
        return diff_streams(
            [answer_view(chunk) for chunk in before],
            [answer_view(chunk) for chunk in after],
            ignore,
        )
    return diff_values(answer_view(before), answer_view(after), ignore)


def answer_view(plain: Any) -> Any:
    """A value as a diff shows it: its JSON view, an HTTP answer read as headers by name
    and its body parsed (``answer_views``), an auto-typed object unwrapped (its private
    attributes as members, its class as ``$castore_type``)."""
    view = to_json_view(readable(plain))
    if not (isinstance(view, dict) and TYPE_TAG in view and "value" in view):
        return view
    if not set(view) <= _WRAPPER_KEYS:
        return view
    inner = view["value"]
    if isinstance(inner, dict):
        private = view.get(PRIVATE_FIELD)
        extra = private if isinstance(private, dict) else {}
        return {TYPE_TAG: view[TYPE_TAG], **inner, **extra}
    return inner


def _metadata_changes(was: Entry, now: Entry) -> tuple[list[Change], list[Change]]:
    """(significant changes, changes shown only beside others)."""
    significant: list[Change] = []
    if was.schema != now.schema:
        significant.append(Change(("schema",), "changed", was.schema, now.schema))
    if was.stream != now.stream:
        significant.append(Change(("stream",), "changed", was.stream, now.stream))
    for name in sorted(was.metadata.keys() | now.metadata.keys()):
        old_value, new_value = was.metadata.get(name), now.metadata.get(name)
        if old_value == new_value:
            continue
        kind: Literal["changed", "added", "removed"] = (
            "added"
            if name not in was.metadata
            else "removed"
            if name not in now.metadata
            else "changed"
        )
        significant.append(Change(("metadata", name), kind, old_value, new_value))
    shown: list[Change] = []
    if was.recorded_at != now.recorded_at:
        shown.append(
            Change(
                ("recorded_at",),
                "changed",
                format_time(was.recorded_at),
                format_time(now.recorded_at),
            )
        )
    if was.duration != now.duration:
        shown.append(Change(("duration",), "changed", was.duration, now.duration))
    return significant, shown


#: The metadata ``castore_http`` keeps that names a request's slot: which test made it,
#: to which endpoint, and the how-manieth such request of the test it was.
_SLOT: Final = ("test", "method", "url", "call")


def _slot(entry: Entry) -> tuple[Any, ...] | None:
    metadata = entry.metadata
    if not all(name in metadata for name in _SLOT):
        return None
    return tuple(metadata[name] for name in _SLOT)


def _changed_requests(
    result: NamespaceDiff, before: Mapping[str, Entry], after: Mapping[str, Entry]
) -> list[tuple[EntryDiff, EntryDiff]]:
    """Added entries that took the slot of an earlier request (the same test, endpoint and
    order): a changed request, under the new key its new body hashed to. The earlier one
    may be gone or still there (until ``castore prune``). Each such pair leaves the
    added and removed lists."""
    earlier: dict[tuple[Any, ...], EntryDiff] = {}
    for removed in result.removed:
        slot = _slot(removed.old) if removed.old is not None else None
        if slot is not None:
            earlier.setdefault(slot, removed)
    for key, kept in before.items():
        slot = _slot(kept)
        if slot is not None and key in after and after[key].blob == kept.blob:
            earlier.setdefault(slot, EntryDiff(result.namespace, key, "removed", kept, None))
    pairs = []
    for added in list(result.added):
        slot = _slot(added.new) if added.new is not None else None
        partner = earlier.pop(slot, None) if slot is not None else None
        if partner is None or partner.key == added.key:
            continue
        result.added.remove(added)
        if partner in result.removed:
            result.removed.remove(partner)
        pairs.append((added, partner))
    return pairs


def _request_change(
    old: StoreSide,
    new: StoreSide,
    added: EntryDiff,
    earlier: EntryDiff,
    volatility: Volatility | None,
) -> EntryDiff:
    """One changed request: how the request changed, and how its answer did."""
    was, now = earlier.old, added.new
    assert was is not None and now is not None
    significant, shown = _metadata_changes(was, now)
    request = [change for change in significant if change.path[-1] not in ("test", "call")]
    diff = EntryDiff(
        added.namespace,
        added.key,
        "changed",
        was,
        now,
        old_key=earlier.key,
        request=request,
        metadata=shown,
    )
    if was.blob == now.blob:
        return diff
    try:
        before, after = old.read_value(was.blob), new.read_value(now.blob)
    except CastoreError as error:
        diff.problem = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        return diff
    if volatility is not None:
        before, after = volatility.stripped(before), volatility.stripped(after)
    diff.value = _value_diff(before, after, False, ())
    return diff
