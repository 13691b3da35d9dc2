"""A store: a directory of blobs and per-namespace indexes, and the API to use it.

Layout::

    <root>/castore.json                    compression settings, dictionaries
    <root>/index/<namespace>.json          one sorted JSON index per namespace
    <root>/blobs/ab/ab…(64 hex).zst        one zstd-compressed msgpack value per file
    <root>/.castore/                       local state, git-ignored (locks, last run)

Reads never take a lock: every file is replaced atomically, so a reader sees a whole old
or whole new file. Writes take one store-wide file lock, re-read the index under it and
apply only their own change (merge on write), so concurrent writers never lose each
other's entries; the blob is (re)checked under the same lock, so ``castore gc`` can never
delete a blob between its write and the index entry that references it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from castore._atomic import ensure_private_directory, sync_all, write_atomic
from castore._blobs import BLOB_SUFFIX, BlobDirectory, BlobFile, is_lfs_pointer
from castore._codec import (
    ZSTD_MAGIC,
    Compressor,
    DecodeError,
    Decompressor,
    EncodeError,
    FrameError,
    FrameTooLargeError,
    digest,
    pack_value,
    unpack_value,
)
from castore._config import CONFIG_NAME, StoreConfig, dump_config, load_config
from castore._index import Entry, LineMemo, dump_index, load_index, now
from castore._keys import check_namespace, stored_key
from castore.errors import (
    CorruptBlobError,
    EntryNotFoundError,
    LfsPointerError,
    MissingBlobError,
    StoreLockedError,
    UnencodableValueError,
    ValueTooLargeError,
)

if TYPE_CHECKING:
    import filelock

INDEX_DIR: Final = "index"
INDEX_SUFFIX: Final = ".json"
STATE_DIR: Final = ".castore"
#: Largest value a blob may decompress to; a guard against decompression bombs.
DEFAULT_MAX_VALUE_BYTES: Final = 512 * 1024 * 1024
LOCK_TIMEOUT_SECONDS: Final = 300.0
_DIGEST_NAME: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class _CachedIndex:
    entries: dict[str, Entry]
    signature: tuple[int, int, int] | None  # (inode, size, mtime_ns) of the file read
    lines: LineMemo = field(default_factory=dict)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class Store:
    """A castore store directory. Cheap to open; nothing is created until the first write.

    ``Store("tests/fixtures/castore").put("tests/test_x", "key", value)`` records a value;
    ``.get("tests/test_x", "key")`` reads it back, checking its digest.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    ) -> None:
        self.root = Path(root).absolute()
        self._blobs = BlobDirectory(self.root)
        self._index_prefix = f"{self.root}{os.sep}{INDEX_DIR}{os.sep}"
        self._config = load_config(self.root)
        self._decompressor = Decompressor(max_value_bytes, self._load_dictionary)
        self._compressor: Compressor | None = None
        self._indexes: dict[str, _CachedIndex] = {}
        self._pending: dict[str, dict[str, Entry | None]] | None = None
        self._unsynced: list[Path] = []  # blobs a batch wrote without fsync
        self._mutex = threading.RLock()
        self._file_lock: filelock.FileLock | None = None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def config(self) -> StoreConfig:
        return self._config

    @property
    def state_dir(self) -> Path:
        """Local, git-ignored state: locks, the last test run's usage, quarantine."""
        return self.root / STATE_DIR

    # --- reading ---------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        """Every namespace that has an index file, sorted."""
        index_root = self.root / INDEX_DIR
        found = []
        for directory, subdirs, files in os.walk(index_root):
            subdirs[:] = [name for name in subdirs if not name.startswith(".")]
            for name in files:
                path = Path(directory, name)
                if name.endswith(INDEX_SUFFIX) and not name.startswith("."):
                    found.append(path.relative_to(index_root).as_posix()[: -len(INDEX_SUFFIX)])
        return sorted(found)

    def index_path(self, namespace: str) -> Path:
        return Path(self._index_file(namespace))

    def _index_file(self, namespace: str) -> str:
        """:meth:`index_path` as a string: replay reads build no pathlib objects."""
        return f"{self._index_prefix}{check_namespace(namespace)}{INDEX_SUFFIX}"

    def entries(self, namespace: str) -> Mapping[str, Entry]:
        """A namespace's entries by stored key (read-only; empty if it does not exist)."""
        return MappingProxyType(self._cached(namespace).entries)

    def entry(self, namespace: str, key: str) -> Entry | None:
        """The index entry for ``key`` (long keys are shortened as when stored), or None."""
        return self._cached(namespace).entries.get(stored_key(key))

    def _stored_entry(self, namespace: str, stored: str) -> Entry | None:
        """:meth:`entry` for a key already in its stored form (the recorder's hot path)."""
        return self._cached(namespace).entries.get(stored)

    def contains(self, namespace: str, key: str) -> bool:
        return self.entry(namespace, key) is not None

    def get(self, namespace: str, key: str) -> Any:
        """The value recorded for ``key``; :class:`EntryNotFoundError` if there is none."""
        found = self.entry(namespace, key)
        if found is None:
            raise EntryNotFoundError(namespace, stored_key(key), self.root)
        return self.read_value(found, owner=f"namespace {namespace!r}, key {stored_key(key)!r}")

    def read_value(self, entry: Entry, *, owner: str = "") -> Any:
        """Decode an entry's blob, checking that its content matches its digest.

        ``owner`` names who uses the blob in error messages ("namespace 'x', key 'k'")."""
        return self._read_value(entry, owner)

    def _read_value(self, entry: Entry, owner: str | tuple[str, str]) -> Any:
        """The replay hot path; ``owner`` may be (namespace, key), formatted only on error."""
        packed = self._read_packed(entry.blob, owner)
        try:
            return unpack_value(packed)
        except DecodeError as error:
            path = self.blob_path(entry.blob)
            raise CorruptBlobError(path, str(error), _owner_text(owner)) from None

    def read_blob(self, blob: str) -> Any:
        """Decode a blob by digest (for ``castore cat`` and maintenance)."""
        return unpack_checked(self._read_packed(blob, ""), self.blob_path(blob))

    def read_packed(self, blob: str, *, owner: str = "", strict: bool = False) -> bytes:
        """A blob's verified msgpack bytes (what the digest is computed over); ``strict``
        also refuses bytes after the zstd frame."""
        return self._read_packed(blob, owner, strict=strict)

    def decode_blob_file(self, frame: bytes, path: Path) -> Any:
        """Decode a blob file's bytes read from anywhere (git's textconv passes a temporary
        copy). The store supplies the zstd dictionaries; the digest is checked when the
        file name carries one."""
        name = path.name.removesuffix(BLOB_SUFFIX)
        expected = name if _DIGEST_NAME.fullmatch(name) else None
        return unpack_checked(self._decode_frame(frame, expected, path, ""), path)

    def blob_path(self, blob: str) -> Path:
        return self._blobs.path_for(blob)

    def blobs(self) -> Iterator[BlobFile]:
        """Every blob file in the store, in digest order."""
        return self._blobs.walk()

    def stray_files(self) -> Iterator[BlobFile]:
        """Files under ``blobs/`` that are not blobs (temporary files of killed writers…)."""
        return self._blobs.strays()

    def refresh(self, namespace: str | None = None) -> None:
        """Forget cached indexes so the next read sees other processes' writes."""
        with self._mutex:
            if namespace is None:
                self._indexes.clear()
                self._config = load_config(self.root)
                self._compressor = None
            else:
                self._indexes.pop(namespace, None)

    def _cached(self, namespace: str) -> _CachedIndex:
        cached = self._indexes.get(namespace)
        if cached is None:
            # Read path: no stat. Without a signature, the next write re-reads the file
            # under the lock (see _fresh), which is what it must do anyway.
            entries = load_index(self._index_file(namespace))
            cached = self._indexes[namespace] = _CachedIndex(entries, None)
        return cached

    def _read_packed(
        self, blob: str, owner: str | tuple[str, str], *, strict: bool = False
    ) -> bytes:
        try:
            frame = self._blobs.read(blob)
        except FileNotFoundError:
            raise MissingBlobError(self._blobs.path_for(blob), _owner_text(owner)) from None
        where = self._blobs.file_for(blob)  # a string: a Path is built only for an error
        return self._decode_frame(frame, blob, where, owner, strict=strict)

    def _decode_frame(
        self,
        frame: bytes,
        blob: str | None,
        where: str | Path,
        owner: str | tuple[str, str],
        *,
        strict: bool = False,
    ) -> bytes:
        if not frame.startswith(ZSTD_MAGIC):
            if is_lfs_pointer(frame):
                raise LfsPointerError(Path(where), _owner_text(owner))
            raise CorruptBlobError(Path(where), "it is not a zstd frame", _owner_text(owner))
        try:
            packed = self._decompressor.decompress(frame, strict=strict)
        except FrameTooLargeError as error:
            limit = self._decompressor.max_output
            raise ValueTooLargeError(Path(where), error.size, limit) from None
        except FrameError as error:
            raise CorruptBlobError(Path(where), str(error), _owner_text(owner)) from None
        actual = digest(packed)
        if blob is not None and actual != blob:
            detail = f"its content hashes to {actual[:16]}…, not to its name"
            raise CorruptBlobError(Path(where), detail, _owner_text(owner))
        return packed

    def _load_dictionary(self, dictionary_id: int) -> bytes:
        blob = self._config.dictionaries.get(dictionary_id)
        if blob is None:
            raise FrameError(
                f"it needs zstd dictionary {dictionary_id}, which {CONFIG_NAME} does not list"
            )
        value = self.read_blob(blob)
        if not isinstance(value, bytes):
            raise FrameError(f"dictionary blob {blob[:16]}… does not hold bytes")
        return value

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
        stream: str | None = None,
    ) -> Entry:
        """Record ``value`` under ``key``, replacing any earlier recording; durable on return.

        Refuses, before writing anything, a value msgpack cannot carry faithfully and
        metadata that is not JSON (:class:`~castore.errors.UnencodableValueError`).
        """
        check_namespace(namespace)
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
        self.put_entry(namespace, key, entry, packed)
        return entry

    def put_entry(self, namespace: str, key: str, entry: Entry, packed: bytes) -> None:
        """Store prepared ``packed`` bytes and their entry (``entry.blob`` must be their
        digest). For importers that set ``recorded_at`` and metadata themselves."""
        check_namespace(namespace)
        key = stored_key(key)
        # Compress outside the lock; under it, only check that gc has not removed the blob.
        frame = None if self._blob_is_sound(entry.blob) else self._compress(packed)
        with self._write_lock():
            if frame is None and not self._blobs.path_for(entry.blob).exists():
                frame = self._compress(packed)
            if frame is not None:
                self._write_blob_file(entry.blob, frame)
            self._stage(namespace, {key: entry})

    def delete(self, namespace: str, key: str) -> bool:
        """Drop ``key`` from its index (its blob stays until ``castore gc``)."""
        key = stored_key(key)
        with self._write_lock():
            if key not in self._fresh(namespace).entries:
                return False
            self._stage(namespace, {key: None})
        return True

    def write_blob(self, packed: bytes, *, compressor: Compressor | None = None) -> str:
        """Write (or rewrite) packed bytes as a blob and return their digest."""
        blob = digest(packed)
        frame = (compressor or self._get_compressor()).compress(packed)
        with self._write_lock():
            self._write_blob_file(blob, frame)
        return blob

    def rewrite_blobs(self, packed: list[bytes], compressor: Compressor) -> None:
        """Write (or rewrite) many values as blobs, compressed in parallel, in one batch."""
        frames = compressor.compress_many(packed)
        with self.batch():
            for value, frame in zip(packed, frames, strict=True):
                self._write_blob_file(digest(value), frame)

    def _write_blob_file(self, blob: str, frame: bytes) -> None:
        """Durable at once, or, inside a batch, made durable by one sync at its end."""
        in_batch = self._pending is not None
        self._blobs.write(blob, frame, durable=not in_batch)
        if in_batch:
            self._unsynced.append(self._blobs.path_for(blob))

    def delete_blob(self, blob: str) -> None:
        """Remove a blob file; callers (gc) hold :meth:`lock` and checked it is unused."""
        self._blobs.delete(blob)

    def save_config(self, config: StoreConfig) -> None:
        with self._write_lock():
            write_atomic(self.root / CONFIG_NAME, dump_config(config))
            self._config = config
            self._compressor = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes: blobs are written at once, each index once at the end.

        For importers and benchmarks writing thousands of entries. Index changes are
        committed when the block ends, also when it ends with an exception, so every
        completed ``put`` is kept. Blobs are made durable with one ``sync()`` before any
        index refers to them, instead of an fsync each. The store lock is held for the
        whole block, so ``castore gc`` cannot remove a blob the batch has not indexed yet.
        """
        with self._write_lock():
            if self._pending is not None:  # nested: the outer batch commits
                yield
                return
            self._pending = {}
            try:
                yield
            finally:
                pending, self._pending = self._pending, None
                if self._unsynced:
                    sync_all(self._unsynced)
                    self._unsynced = []
                for namespace, changes in pending.items():
                    self._commit(namespace, changes)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock (maintenance commands use it around their work)."""
        with self._write_lock():
            yield

    def _compress(self, packed: bytes) -> bytes:
        return self._get_compressor().compress(packed)

    def _get_compressor(self) -> Compressor:
        if self._compressor is None:
            dictionary = None
            if self._config.dictionary is not None:
                dictionary = self._load_dictionary(self._config.dictionary)
            self._compressor = Compressor(self._config.level, dictionary)
        return self._compressor

    def _blob_is_sound(self, blob: str) -> bool:
        """True if the blob exists and decodes to its digest; a damaged copy gets rewritten."""
        path = self._blobs.path_for(blob)
        try:
            self._decode_frame(path.read_bytes(), blob, path, "")
        except (FileNotFoundError, CorruptBlobError, LfsPointerError, ValueTooLargeError):
            return False
        return True

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        # Imported on first write: replay-only runs never pay for it.
        import filelock  # noqa: PLC0415

        with self._mutex:
            if self._file_lock is None:
                ensure_private_directory(self.state_dir)
                self._file_lock = filelock.FileLock(self.state_dir / "store.lock")
                if not (self.root / CONFIG_NAME).exists():
                    write_atomic(self.root / CONFIG_NAME, dump_config(self._config))
            try:
                self._file_lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
            except filelock.Timeout:
                lock_path = self.state_dir / "store.lock"
                raise StoreLockedError(lock_path, LOCK_TIMEOUT_SECONDS) from None
            try:
                yield
            finally:
                self._file_lock.release()

    def _fresh(self, namespace: str) -> _CachedIndex:
        """The namespace as it is on disk now (reusing the cache if the file is unchanged)."""
        path = self.index_path(namespace)
        signature = _signature(path)
        cached = self._indexes.get(namespace)
        if cached is None or cached.signature != signature or signature is None:
            cached = _CachedIndex(load_index(path), signature)
            self._indexes[namespace] = cached
        return cached

    def _stage(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        if self._pending is not None:
            self._pending.setdefault(namespace, {}).update(changes)
            # Keep reads in this process consistent with the writes not yet committed.
            cached = self._cached(namespace)
            for key, entry in changes.items():
                if entry is None:
                    cached.entries.pop(key, None)
                else:
                    cached.entries[key] = entry
        else:
            self._commit(namespace, changes)

    def _commit(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        """Apply changes to the index as it is on disk now; call with the write lock held."""
        fresh = self._fresh(namespace)
        current = dict(fresh.entries)
        for key, entry in changes.items():
            if entry is None:
                current.pop(key, None)
            else:
                current[key] = entry
        path = self.index_path(namespace)
        if current:
            write_atomic(path, dump_index(namespace, current, fresh.lines))
        else:
            path.unlink(missing_ok=True)
            _remove_empty_parents(path.parent, self.root / INDEX_DIR)
        self._indexes[namespace] = _CachedIndex(current, _signature(path), fresh.lines)


def _owner_text(owner: str | tuple[str, str]) -> str:
    if isinstance(owner, tuple):
        return f"namespace {owner[0]!r}, key {owner[1]!r}"
    return owner


def unpack_checked(packed: bytes, path: Path) -> Any:
    try:
        return unpack_value(packed)
    except DecodeError as error:
        raise CorruptBlobError(path, str(error)) from None


def check_metadata(key: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata lives in the JSON index, so it must be plain JSON; return a copy."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise UnencodableValueError(key, type(metadata).__qualname__, "", what="metadata")
    try:
        return dict(json.loads(json.dumps(dict(metadata), allow_nan=False)))
    except (TypeError, ValueError) as error:
        location, type_name = _first_non_json(metadata, "")
        raise UnencodableValueError(
            key, type_name or str(error), location, what="metadata"
        ) from None


def _first_non_json(value: Any, location: str) -> tuple[str, str]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str | int | float | bool) and name is not None:
                return f"{location}[key {name!r}]", type(name).__qualname__
            found = _first_non_json(item, f"{location}[{name!r}]")
            if found[1]:
                return found
        return "", ""
    if isinstance(value, list | tuple):
        for number, item in enumerate(value):
            found = _first_non_json(item, f"{location}[{number}]")
            if found[1]:
                return found
        return "", ""
    if isinstance(value, float) and not math.isfinite(value):
        return location, "non-finite float"
    if value is None or isinstance(value, str | int | float | bool):
        return "", ""
    return location, type(value).__qualname__


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
