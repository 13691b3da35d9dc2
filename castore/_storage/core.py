"""The store's machinery, and its internal face: what castore's own upkeep needs.

:class:`Store` (``store.py``) is the public face and :class:`Namespace` the recorder's
handle; both are thin layers over a :class:`StoreCore`. Upkeep (gc, verify, import,
dictionary training, git) reaches the core through ``castore._storage.store.internals``,
so the public face stays one screen long and upkeep never touches a private name.

Writes take the store-wide lock, re-read the index under it and apply only their own
change; the blob is (re)checked under the same lock, so ``castore gc`` can never delete a
blob between its write and the index entry that references it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from castore._storage.atomic import write_atomic
from castore._storage.blobs import lfs
from castore._storage.blobs.backend import BlobBackend
from castore._storage.blobs.lfs import LfsFetch
from castore._storage.blobs.loose import LooseBlobs
from castore._storage.blobs.packed import PackedBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.blobs.wrappers import LayeredBlobs
from castore._storage.codec import digest
from castore._storage.config import StoreConfig, dump_config, load_config
from castore._storage.frames import Compressor, Decompressor, FrameError
from castore._storage.index import Entry, check_entry
from castore._storage.indexes import IndexFiles
from castore._storage.layout import CONFIG_NAME, QUARANTINE_DIR, STATE_DIR
from castore._storage.locks import KeyLock, StoreLock
from castore._storage.names import check_namespace, check_new_namespace, stored_key
from castore.errors import CastoreError, StoreError, StoreWriteError

#: Largest value a blob may decompress to; a guard against decompression bombs.
DEFAULT_MAX_VALUE_BYTES: Final = 512 * 1024 * 1024


class StoreCore:
    def __init__(
        self, root: Path, *, max_value_bytes: int, backend: BlobBackend | None = None
    ) -> None:
        self.root = root
        self.state_dir = root / STATE_DIR
        self.indexes = IndexFiles(root)
        #: The packs, when this core composes its own backend (loose files + packs).
        self.packs: PackedBlobs | None = None
        if backend is None:
            self.packs = PackedBlobs(root)
            backend = LayeredBlobs(LooseBlobs(root), self.packs)
        self.backend = backend
        self.blobs = VerifiedBlobs(self.backend, Decompressor(max_value_bytes, self._dictionary))
        self._config = load_config(root)
        self._compressor: Compressor | None = None
        self._lock = StoreLock(self.state_dir)
        self._pending: dict[str, dict[str, Entry | None]] | None = None

    @property
    def config(self) -> StoreConfig:
        return self._config

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / QUARANTINE_DIR

    def refresh(self, namespace: str | None = None) -> None:
        """Forget cached indexes (and, for the whole store, castore.json)."""
        with self._lock.mutex:
            self.indexes.forget(namespace)
            if namespace is None:
                self._config = load_config(self.root)
                self._compressor = None

    def key_lock(self, namespace: str, key: str) -> KeyLock:
        return KeyLock(self.state_dir, namespace, key)

    # --- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock (writes and upkeep commands use it)."""
        first = self._lock.acquire()
        try:
            if first and not (self.root / CONFIG_NAME).exists():
                write_atomic(self.root / CONFIG_NAME, dump_config(self._config))
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

    def files_for(self, namespaces: Iterable[str]) -> set[Path]:
        """The files (packs, loose blobs, dictionaries) that replaying ``namespaces``
        reads: what a lazy LFS fetch must bring. Unreadable namespaces are skipped (their
        replay reports them)."""
        blobs = set(self._config.dictionaries.values())
        for namespace in namespaces:
            try:
                blobs.update(entry.blob for entry in self.indexes.cached(namespace).values())
            except CastoreError:
                continue
        return self.files_of(blobs)

    def files_of(self, blobs: Iterable[str]) -> set[Path]:
        """The files (packs or loose blobs) that hold ``blobs``."""
        files, held_in = set(), set()
        packs = self.packs
        for blob in blobs:
            pack = packs.pack_of(blob) if packs is not None else None
            if pack is not None:
                held_in.add(pack)  # a path per pack, not per blob: this runs at collection
            else:
                files.add(self.backend.location(blob))
        if packs is not None:
            files.update(packs.pack_path(name) for name in held_in)
        return files

    def unreferenced_loose_blobs(self) -> tuple[int, int]:
        """(count, bytes) of loose blobs no index or castore.json refers to: what the next
        ``castore gc`` would delete. Raises a castore error if an index cannot be read."""
        live = set(self._config.dictionaries.values())
        for namespace in self.indexes.namespaces():
            live.update(entry.blob for entry in self.indexes.cached(namespace).values())
        backend = self.backend
        loose = backend.loose if isinstance(backend, LayeredBlobs) else backend
        dead = [blob for blob in loose.walk() if blob.digest not in live]
        return len(dead), sum(blob.size for blob in dead)

    def fetch_lfs(self, namespaces: Iterable[str]) -> LfsFetch:
        """Download the LFS objects ``namespaces`` need that this clone lacks, once: under
        the store lock, so of several xdist workers only the first fetches."""
        with self.lock_for_reading():
            return lfs.fetch(self.files_for(namespaces))

    def fetch_lfs_blobs(self, blobs: Iterable[str]) -> LfsFetch:
        """As :meth:`fetch_lfs`, for the files that hold ``blobs`` (and the dictionaries)."""
        with self.lock_for_reading():
            return lfs.fetch(self.files_of({*blobs, *self._config.dictionaries.values()}))

    def put_entry(self, namespace: str, key: str, entry: Entry, packed: bytes) -> None:
        """Store prepared ``packed`` bytes and their entry (``entry.blob`` must be their
        digest). For importers that set ``recorded_at`` and metadata themselves."""
        if not os.path.exists(self.indexes.path(check_namespace(namespace))):  # noqa: PTH110
            check_new_namespace(namespace)  # creating it: the stricter rules for new names
        key = stored_key(key)
        check_entry(key, entry)
        # Compress outside the lock; under it, only check that gc has not removed the blob.
        frame = None if self.blobs.is_sound(entry.blob) else self.compress(packed)
        with self.lock():
            if frame is None and not self.backend.exists(entry.blob):
                frame = self.compress(packed)
            if frame is not None:
                self.backend.write(entry.blob, frame, durable=self._pending is None)
            self.stage(namespace, {key: entry})

    def stage(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        """Commit index changes now, or at the end of the current batch."""
        if self._pending is not None:
            self._pending.setdefault(namespace, {}).update(changes)
            self.indexes.overlay(namespace, changes)
        else:
            self.indexes.commit(namespace, changes)

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
                self.backend.sync()
                for namespace, changes in pending.items():
                    self.indexes.commit(namespace, changes)

    def write_blob(self, packed: bytes, *, compressor: Compressor | None = None) -> str:
        """Write (or rewrite) packed bytes as a blob and return their digest."""
        blob = digest(packed)
        frame = (compressor or self.compressor()).compress(packed)
        with self.lock():
            self.backend.write(blob, frame, durable=self._pending is None)
        return blob

    def rewrite_blobs(self, packed: list[bytes], compressor: Compressor) -> None:
        """Write (or rewrite) many values as blobs, compressed in parallel, in one batch."""
        frames = compressor.compress_many(packed)
        with self.batch():
            for value, frame in zip(packed, frames, strict=True):
                self.backend.write(digest(value), frame, durable=False)

    def save_config(self, config: StoreConfig) -> None:
        with self.lock():
            write_atomic(self.root / CONFIG_NAME, dump_config(config))
            self._config = config
            self._compressor = None

    # --- compression -----------------------------------------------------------------

    def compress(self, packed: bytes) -> bytes:
        return self.compressor().compress(packed)

    def compressor(self) -> Compressor:
        if self._compressor is None:
            dictionary = None
            if self._config.dictionary is not None:
                dictionary = self._dictionary(self._config.dictionary)
            self._compressor = Compressor(self._config.level, dictionary)
        return self._compressor

    def dictionary_bytes(self, dictionary_id: int) -> bytes:
        """The zstd dictionary with this id, as castore.json lists it."""
        try:
            return self._dictionary(dictionary_id)
        except FrameError as error:
            raise StoreError(str(error)) from None

    def _dictionary(self, dictionary_id: int) -> bytes:
        blob = self._config.dictionaries.get(dictionary_id)
        if blob is None:
            raise FrameError(
                f"it needs zstd dictionary {dictionary_id}, which {CONFIG_NAME} does not list"
            )
        value = self.blobs.read_value(blob)
        if not isinstance(value, bytes):
            raise FrameError(f"dictionary blob {blob[:16]}… does not hold bytes")
        return value
