"""A store: a directory of blobs and per-namespace indexes, and the public API to use it.

The layout is ``layout.py``'s; the machinery is ``core.py``'s. This module is the face users
touch, and every method here is documented in docs/api.md (a test holds the two together).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castore._storage.config import StoreConfig
from castore._storage.core import StoreCore, open_core
from castore._storage.index import Entry, StreamKind
from castore._storage.names import stored_key
from castore._storage.namespace import Namespace
from castore._storage.public_names import present_as_public
from castore._storage.value_limit import max_value_bytes as max_value_bytes_in_force
from castore.errors import EntryNotFoundError

if TYPE_CHECKING:
    from castore._storage.blobs.blob_file import BlobFile


class Store:
    """A castore store directory. Cheap to open; nothing is created until the first write.

    ``Store("tests/fixtures/castore").put("tests/test_x", "key", value)`` records a value;
    ``.get("tests/test_x", "key")`` reads it back, checking its digest.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_value_bytes: int | None = None) -> None:
        self.root = Path(root).absolute()
        self._core = open_core(self.root, max_value_bytes=max_value_bytes_in_force(max_value_bytes))
        self._namespaces: dict[str, Namespace] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def config(self) -> StoreConfig:
        """What ``castore.json`` says: compression level and dictionaries (read-only)."""
        return self._core.config.current

    def namespace(self, name: str) -> Namespace:
        """A handle on one namespace: what a recorder or an integration works through."""
        found = self._namespaces.get(name)
        if found is None:
            found = self._namespaces[name] = Namespace(self._core, name)
        return found

    # --- reading ---------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        """Every namespace that has an index file, sorted."""
        return self._core.indexes.namespaces()

    def entries(self, namespace: str) -> Mapping[str, Entry]:
        """A namespace's entries by stored key (read-only; empty if it does not exist)."""
        return self.namespace(namespace).entries()

    def entry(self, namespace: str, key: str) -> Entry | None:
        """The index entry for ``key`` (long keys are shortened as when stored), or None."""
        return self.namespace(namespace).entry(stored_key(key))

    def contains(self, namespace: str, key: str) -> bool:
        return self.entry(namespace, key) is not None

    def get(self, namespace: str, key: str) -> Any:
        """The value recorded for ``key``; :class:`EntryNotFoundError` if there is none."""
        handle = self._namespaces.get(namespace) or self.namespace(namespace)
        stored = stored_key(key)
        found = handle.entry(stored)
        if found is None:
            raise EntryNotFoundError(namespace, stored, self.root)
        return handle.read(found, stored)

    def blobs(self) -> Iterator[BlobFile]:
        """Every blob in the store, in digest order."""
        return self._core.blobs.walk()

    def read_blob(self, blob: str) -> Any:
        """Decode a blob by digest (for ``castore cat`` and maintenance)."""
        return self._core.reader.read_value(blob)

    def refresh(self, namespace: str | None = None) -> None:
        """Forget cached indexes so the next read sees other processes' writes."""
        self._core.writer.refresh(namespace)

    # --- writing ---------------------------------------------------------------------

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        duration: float | None = None,
        schema: str | int | None = None,
        stream: StreamKind | None = None,
    ) -> Entry:
        """Record ``value`` under ``key`` in ``namespace``: :meth:`Namespace.put`."""
        return self.namespace(namespace).put(
            key, value, metadata=metadata, duration=duration, schema=schema, stream=stream
        )

    def delete(self, namespace: str, key: str) -> bool:
        """Drop ``key`` from its index (its blob stays until ``castore gc``)."""
        return self.namespace(namespace).delete(key)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes: blobs are written at once, each index once at the end.

        For importers and benchmarks writing thousands of entries. Index changes are
        committed when the block ends, also when it ends with an exception, so every
        completed ``put`` is kept. The store lock is held for the whole block, so
        ``castore gc`` cannot remove a blob the batch has not indexed yet.
        """
        with self._core.writer.batch():
            yield


def store_over(core: StoreCore) -> Store:
    """A :class:`Store` over parts put together by hand (another file backend, a read-through
    tier): what tests and castore's own tools use to compose a store."""
    store = Store.__new__(Store)
    store.root = core.root
    store._core = core
    store._namespaces = {}
    return store


def internals(store: Store) -> StoreCore:
    """The internal face of ``store``, for castore's own upkeep (gc, verify, import, git).

    Not public API: users work through :class:`Store` and :class:`Namespace`."""
    return store._core


present_as_public(Store)
