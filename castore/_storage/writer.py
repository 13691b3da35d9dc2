"""Writing a store: the store lock, batches, entries with their blobs, castore.json.

Writes take the store-wide lock, re-read the index under it and apply only their own
change; the blob is (re)checked under the same lock, so ``castore gc`` can never delete a
blob between its write and the index entry that references it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from castore._storage.blobs.stored import StoredBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.codec import digest
from castore._storage.compression import Compression
from castore._storage.config import ConfigFile, StoreConfig
from castore._storage.frames import Compressor
from castore._storage.index import Entry, check_entry
from castore._storage.index_folder import IndexFiles
from castore._storage.locks import KeyLock, StoreLock
from castore._storage.names import check_namespace, check_new_namespace, stored_key
from castore._storage.value_limit import SETTING
from castore.errors import StoreWriteError, ValueTooLargeError


class StoreWriter:
    """Everything that changes a store, under its lock."""

    def __init__(
        self,
        state_dir: Path,
        *,
        max_value_bytes: int,
        config: ConfigFile,
        indexes: IndexFiles,
        blobs: StoredBlobs,
        reader: VerifiedBlobs,
        compression: Compression,
    ) -> None:
        self.state_dir = state_dir
        self.max_value_bytes = max_value_bytes
        self._config = config
        self._indexes = indexes
        self._blobs = blobs
        self._reader = reader
        self._compression = compression
        self._lock = StoreLock(state_dir)
        self._pending: dict[str, dict[str, Entry | None]] | None = None

    def refresh(self, namespace: str | None = None) -> None:
        """Forget cached indexes (and, for the whole store, castore.json)."""
        with self._lock.mutex:
            self._indexes.forget(namespace)
            if namespace is None:
                self._config.reload()

    def key_lock(self, namespace: str, key: str) -> KeyLock:
        return KeyLock(self.state_dir, namespace, key)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock (writes and upkeep commands use it)."""
        first = self._lock.acquire()
        try:
            if first:
                self._config.write_if_absent()
            yield
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def lock_for_reading(self) -> Iterator[None]:
        """Hold the write lock where the store can be written, so a reader (verify, a
        dry run) sees it consistent; where it cannot be (a read-only mount, no
        permission), read without the lock: no writer can change such a store either."""
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(StoreWriteError):
                stack.enter_context(self.lock())
            yield

    def put_entry(self, namespace: str, key: str, entry: Entry, packed: bytes) -> None:
        """Store prepared ``packed`` bytes and their entry (``entry.blob`` must be their
        digest). For importers that set ``recorded_at`` and metadata themselves."""
        if not os.path.lexists(self._indexes.path(check_namespace(namespace))):
            check_new_namespace(namespace)  # creating it: the stricter rules for new names
        key = stored_key(key)
        check_entry(key, entry)
        if len(packed) > self.max_value_bytes:  # a value no read of this store could return
            raise ValueTooLargeError(
                self._blobs.loose.location(entry.blob),
                len(packed),
                self.max_value_bytes,
                SETTING,
                recording=True,
            )
        # Compress outside the lock; under it, only check that gc has not removed the blob.
        # A blob this store does not hold is written at once: asking a remote tier for it
        # would cost a round trip per recording (and fail offline).
        held = self._blobs.exists(entry.blob)
        sound = held and self._reader.is_sound(entry.blob)
        frame = None if sound else self._compression.compress(packed)
        with self.lock():
            if frame is None and not self._blobs.exists(entry.blob):
                frame = self._compression.compress(packed)
            if frame is not None:
                self._blobs.write(entry.blob, frame, durable=self._pending is None)
            self.stage(namespace, {key: entry})

    def stage(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        """Commit index changes now, or at the end of the current batch."""
        if self._pending is not None:
            self._pending.setdefault(namespace, {}).update(changes)
            self._indexes.overlay(namespace, changes)
        else:
            self._indexes.commit(namespace, changes)

    def delete_entry(self, namespace: str, key: str) -> bool:
        """Drop ``key`` from its index (its blob stays until ``castore gc``)."""
        with self.lock():
            if key not in self._indexes.fresh(namespace):
                return False
            self.stage(namespace, {key: None})
        return True

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes: blobs written at once, made durable by one sync before any
        index refers to them, and each index written once at the end, also when the block
        ends with an exception, so every completed write is kept."""
        with self.lock():
            if self._pending is not None:  # nested: the outer batch commits
                yield
                return
            self._pending = {}
            try:
                yield
            finally:
                pending, self._pending = self._pending, None
                self._blobs.sync()
                for namespace, changes in pending.items():
                    self._indexes.commit(namespace, changes)

    def write_blob(self, packed: bytes, *, compressor: Compressor | None = None) -> str:
        """Write (or rewrite) packed bytes as a blob and return their digest."""
        blob = digest(packed)
        frame = (compressor or self._compression.compressor()).compress(packed)
        with self.lock():
            self._blobs.write(blob, frame, durable=self._pending is None)
        return blob

    def rewrite_blobs(self, packed: list[bytes], compressor: Compressor) -> None:
        """Write (or rewrite) many values as blobs, compressed in parallel, in one batch."""
        frames = compressor.compress_many(packed)
        with self.batch():
            for value, frame in zip(packed, frames, strict=True):
                self._blobs.write(digest(value), frame, durable=False)

    def save_config(self, config: StoreConfig) -> None:
        with self.lock():
            self._config.save(config)
