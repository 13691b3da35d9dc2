"""One namespace of a store: the handle a recorder (or an integration) works through.

It holds what a recorder needs and nothing more: look an entry up by its stored key, read
its value (errors name the namespace and key), record, delete, re-read from disk, and a
lock per key so that two processes record a key once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from castore._storage.codec import EncodeError, digest, pack_value
from castore._storage.index import Entry, StreamKind, check_metadata, now
from castore._storage.locks import KeyLock
from castore._storage.names import check_namespace, stored_key
from castore._storage.public_names import present_as_public
from castore.errors import BlobError, UnencodableValueError

if TYPE_CHECKING:
    from castore._storage.core import StoreCore


class Namespace:
    # Slots keep a replay's few attribute reads in the object itself.
    __slots__ = ("_core", "_entries", "_generation", "name")

    def __init__(self, core: StoreCore, name: str) -> None:
        self._core = core
        self.name = check_namespace(name)
        # The entries dict as of the indexes' generation (see IndexFiles.generation).
        self._entries: dict[str, Entry] = {}
        self._generation = -1

    def __repr__(self) -> str:
        return f"Namespace({str(self._core.root)!r}, {self.name!r})"

    def entries(self) -> Mapping[str, Entry]:
        """Entries by stored key (read-only; empty if the namespace does not exist)."""
        return MappingProxyType(self._core.indexes.cached(self.name))

    def entry(self, stored: str) -> Entry | None:
        """The entry for a key already in its stored form (the replay hot path)."""
        indexes = self._core.indexes
        if self._generation != indexes.generation:
            # The generation first: a replacement while cached() runs bumps it again, and
            # the next lookup fetches the entries anew rather than keep a replaced dict.
            generation = indexes.generation
            self._entries = indexes.cached(self.name)
            self._generation = generation
        return self._entries.get(stored)

    def fresh_entry(self, stored: str) -> Entry | None:
        """The entry as it is on disk now: another process may have recorded it meanwhile.

        The index is re-read only if its file changed (a stat), and is remembered with
        that file's signature, so the write that usually follows (under the key lock)
        does not parse it again."""
        return self._core.indexes.fresh(self.name).get(stored)

    def read(self, entry: Entry, stored: str) -> Any:
        """Decode ``entry``'s blob, its digest checked; errors name this namespace and key."""
        try:
            return self._core.reader.read_value(entry.blob)
        except BlobError as error:
            raise error.with_owner(f"namespace {self.name!r}, key {stored!r}") from None

    def put(
        self,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        duration: float | None = None,
        schema: str | int | None = None,
        stream: StreamKind | None = None,
    ) -> Entry:
        """Record ``value`` under ``key``, replacing any earlier recording; durable on return.

        Refuses, before writing anything, a value msgpack cannot carry faithfully and
        metadata that is not JSON (:class:`~castore.errors.UnencodableValueError`).
        """
        key = stored_key(key)
        try:
            packed = pack_value(value)
        except EncodeError as error:
            raise UnencodableValueError(key, error.type_name, error.location) from None
        entry = Entry(
            blob=digest(packed),
            size=len(packed),
            recorded_at=now(),
            duration=duration,
            schema=schema,
            metadata=check_metadata(key, metadata),
            stream=stream,
        )
        self._core.writer.put_entry(self.name, key, entry, packed)
        return entry

    def delete(self, key: str) -> bool:
        """Drop ``key`` from the index (its blob stays until ``castore gc``)."""
        return self._core.writer.delete_entry(self.name, stored_key(key))

    def refresh(self) -> None:
        """Forget what this process read, so the next read sees other processes' writes."""
        self._core.writer.refresh(self.name)

    def key_lock(self, stored: str) -> KeyLock:
        """The cross-process lock held while ``stored`` is recorded."""
        return self._core.writer.key_lock(self.name, stored)


present_as_public(Namespace)
