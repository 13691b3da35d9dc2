"""Packed blobs: frames inside immutable pack files (``packfile.py``), found by digest.

Every ``packs/<name>.idx`` is read once per process, the first time a packed blob is
asked for; after that a lookup is one dict access and one ``pread`` on a pack file that
stays open. ``pread`` rather than ``mmap``: a mapped file that shrinks under the reader
(a hostile checkout, a half-finished ``git lfs pull``) kills the process with SIGBUS,
while ``pread`` just returns fewer bytes, which is an error castore can name.

Packs never change once written. :meth:`PackedBlobs.add_pack` and
:meth:`PackedBlobs.remove_pack` are the only ways in and out, used by ``castore pack``
and ``castore gc`` under the store lock; a reader that finds a pack gone (gc replaced
it) reloads the indexes once and reads the blob from its new pack.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from castore._storage.atomic import write_atomic
from castore._storage.blobs.backend import BlobBackend, BlobFile
from castore._storage.blobs.lfs import MAX_POINTER_BYTES, is_lfs_pointer
from castore._storage.blobs.packfile import (
    MAX_PACK_BYTES,
    PACK_MAGIC,
    PackIndex,
    dump_index,
    pack_digest,
    parse_index,
    read_trailer,
)
from castore._storage.layout import (
    MAX_PACK_INDEX_BYTES,
    PACK_INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS_DIR,
    is_digest,
)
from castore._storage.safe_files import FileRefused, ensure_inside, read_store_file
from castore.errors import (
    CorruptBlobError,
    IndexFormatError,
    LfsPointerError,
    MissingBlobError,
    ReadOnlyStoreError,
    StoreWriteError,
)

_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class PackedBlobs(BlobBackend):
    def __init__(self, store_root: Path) -> None:
        self.root = store_root / PACKS_DIR
        self._store_root = str(store_root)
        # digest -> (pack name, offset, length): flat, so a lookup touches one tuple.
        self._where: dict[str, tuple[str, int, int]] = {}
        self._indexes: dict[str, PackIndex] = {}
        self._files: dict[str, int] = {}  # pack name -> open file descriptor
        self._signature: int | None = None  # mtime of packs/ when the indexes were read
        self._loaded = False
        #: Pack indexes that could not be read, by pack name. Their packs are read through
        #: the pack's own table where it is sound (``recovered``); otherwise a blob they
        #: may hold is reported with the index's error, not as simply missing.
        self.damaged: dict[str, IndexFormatError] = {}
        self.recovered: set[str] = set()

    def __repr__(self) -> str:
        return f"PackedBlobs({str(self.root)!r})"

    def __del__(self) -> None:
        for descriptor in self._files.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)

    # --- the indexes -------------------------------------------------------------------

    def _folder_signature(self) -> int | None:
        try:
            return self.root.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _load(self) -> None:
        """Read every pack index; a blob in two packs is read from the first by name."""
        signature = self._folder_signature()
        where: dict[str, tuple[str, int, int]] = {}
        indexes: dict[str, PackIndex] = {}
        self.damaged, self.recovered = {}, set()
        if signature is not None:
            ensure_inside(self._store_root, self.root)
            for name in sorted(path.name for path in self.root.iterdir()):
                stem = name.removesuffix(PACK_INDEX_SUFFIX)
                if stem == name or not is_digest(stem):
                    continue
                try:
                    index = self._read_index(self.root / name)
                except IndexFormatError as error:
                    self.damaged[stem] = error
                    recovered = self._index_from_pack(stem)
                    if recovered is None:
                        continue
                    index = recovered
                    self.recovered.add(stem)
                indexes[stem] = index
                for blob, slot in index.slots.items():
                    where.setdefault(blob, (stem, slot.offset, slot.length))
        self._where, self._indexes, self._signature = where, indexes, signature
        self._loaded = True

    def _read_index(self, path: Path) -> PackIndex:
        try:
            raw = read_store_file(path, MAX_PACK_INDEX_BYTES)
        except FileRefused as refused:
            raise IndexFormatError(path, refused.reason) from None
        if raw is None:  # removed by a concurrent gc since the listing
            return PackIndex(path.stem, 0, 0, {})
        return parse_index(raw, path)

    def _index_from_pack(self, name: str) -> PackIndex | None:
        """A damaged index rebuilt from the pack's own table, if the pack is whole (its
        content still hashes to its name)."""
        try:
            data = read_store_file(self.pack_path(name), MAX_PACK_BYTES)
        except FileRefused:
            return None
        if data is None or pack_digest(data) != name:
            return None
        try:
            slots = read_trailer(data, self.pack_path(name))
        except IndexFormatError:
            return None
        return PackIndex(name, len(data), 0, slots)

    def _ensure_loaded(self, *, recheck: bool = False) -> None:
        if not self._loaded or (recheck and self._folder_signature() != self._signature):
            self._load()

    def indexes(self) -> dict[str, PackIndex]:
        """Every pack's index by pack name, as on disk now."""
        self._ensure_loaded(recheck=True)
        return dict(self._indexes)

    def pack_of(self, digest: str) -> str | None:
        """The name of the pack holding ``digest``, if a pack does."""
        self._ensure_loaded()
        found = self._where.get(digest)
        return found[0] if found else None

    def pack_path(self, name: str) -> Path:
        return self.root / f"{name}{PACK_SUFFIX}"

    def index_path(self, name: str) -> Path:
        return self.root / f"{name}{PACK_INDEX_SUFFIX}"

    # --- reading -------------------------------------------------------------------------

    def read(self, digest: str) -> bytes | None:
        """The frame, looking again at ``packs/`` if the blob is not listed and the folder
        changed since it was read (another process packed or collected)."""
        frame = self.read_listed(digest)
        if frame is None and self._folder_signature() != self._signature:
            self._load()
            frame = self.read_listed(digest)
        if frame is None and len(self.damaged) > len(self.recovered):
            # The blob may sit in a pack whose index cannot be read: say so by name.
            raise next(error for name, error in self.damaged.items() if name not in self.recovered)
        return frame

    def read_listed(self, digest: str) -> bytes | None:
        """The frame if the indexes as last read list the blob: no system call on a miss,
        so a store of loose blobs pays nothing for asking the packs first."""
        if not self._loaded:
            self._load()
        found = self._where.get(digest)
        if found is None:
            return None
        name, offset, length = found
        try:
            descriptor = self._files.get(name)
            if descriptor is None:
                descriptor = self._descriptor(name)
            frame = os.pread(descriptor, length, offset)
        except FileNotFoundError:
            self._load()  # gc replaced the pack: read the blob where it is now
            if self._where.get(digest) in (None, found):
                raise MissingBlobError(self.pack_path(name)) from None
            return self.read(digest)
        if len(frame) != length:
            raise CorruptBlobError(
                self.pack_path(name),
                f"the pack ends before blob {digest[:16]}… (truncated?); restore it with "
                "`git lfs pull` or from git",
            )
        return frame

    def _descriptor(self, name: str) -> int:
        descriptor = self._files.get(name)
        if descriptor is not None:
            return descriptor
        path = self.pack_path(name)
        ensure_inside(self._store_root, self.root)
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise FileNotFoundError(path) from None
            reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
            raise CorruptBlobError(path, f"the pack cannot be opened ({reason})") from None
        try:
            self._check_pack_file(descriptor, path)
        except BaseException:
            os.close(descriptor)
            raise
        self._files[name] = descriptor
        return descriptor

    def _check_pack_file(self, descriptor: int, path: Path) -> None:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise CorruptBlobError(path, "the pack is not a regular file")
        head = os.pread(descriptor, MAX_POINTER_BYTES, 0)
        if is_lfs_pointer(head) and status.st_size < MAX_POINTER_BYTES:
            raise LfsPointerError(path)
        if not head.startswith(PACK_MAGIC):
            raise CorruptBlobError(path, "it is not a castore pack (bad magic)")

    def check_pack(self, name: str, index: PackIndex) -> tuple[str, Path, str] | None:
        """(fault kind, file, what to do) if the pack is not whole: absent, an LFS pointer,
        content that does not hash to its name, or a table that disagrees with its index."""
        path = self.pack_path(name)
        try:
            data = read_store_file(path, MAX_PACK_BYTES)
        except FileRefused as refused:
            return "corrupt", path, refused.reason
        if data is None:
            return "missing", path, "its index is here but the pack is not; restore it"
        if is_lfs_pointer(data):
            return "lfs-pointer", path, "a git-lfs pointer: run `git lfs pull`"
        if pack_digest(data) != name:
            return (
                "corrupt",
                path,
                "its content does not hash to its name (damaged or truncated); restore it "
                "with `git lfs pull` or from git, or re-record and `castore pack --repack`",
            )
        try:
            table = read_trailer(data, path)
        except IndexFormatError as error:
            return "corrupt", path, str(error)
        if table != index.slots:
            detail = "it does not match the table inside its pack; restore it from git"
            return "index", self.index_path(name), detail
        return None

    def exists(self, digest: str) -> bool:
        self._ensure_loaded(recheck=digest not in self._where)
        return digest in self._where

    def location(self, digest: str) -> Path:
        name = self.pack_of(digest)
        return self.pack_path(name) if name else self.root

    def walk(self) -> Iterator[BlobFile]:
        """Every packed blob, in digest order, each named by its pack."""
        self._ensure_loaded(recheck=True)
        found: list[BlobFile] = []
        for name, index in self._indexes.items():
            path = self.pack_path(name)
            try:
                mtime = path.stat().st_mtime
            except OSError:
                mtime = 0.0
            found += [
                BlobFile(blob, path, slot.length, mtime) for blob, slot in index.slots.items()
            ]
        seen: set[str] = set()
        for blob in sorted(found, key=lambda item: item.digest):
            if blob.digest not in seen:
                seen.add(blob.digest)
                yield blob

    def strays(self) -> Iterator[BlobFile]:
        """Files in ``packs/`` that are neither a pack with its index nor an index whose
        pack is absent: temporary files of a killed packer, a pack whose index is gone."""
        if self._folder_signature() is None:
            return
        ensure_inside(self._store_root, self.root)
        names = {path.name for path in self.root.iterdir()}
        for name in sorted(names):
            path = self.root / name
            stem, suffix = path.stem, path.suffix
            paired = suffix == PACK_SUFFIX and f"{stem}{PACK_INDEX_SUFFIX}" in names
            if is_digest(stem) and (paired or suffix == PACK_INDEX_SUFFIX):
                continue
            status = path.lstat()
            yield BlobFile("", path, status.st_size, status.st_mtime)

    # --- writing (castore pack and gc only) ------------------------------------------------

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        raise ReadOnlyStoreError(
            f"write blob {digest[:16]}… into a pack (packs never change)", self.root
        )

    def delete(self, digest: str) -> None:
        raise ReadOnlyStoreError(
            f"delete packed blob {digest[:16]}… (gc rewrites packs)", self.root
        )

    def add_pack(self, data: bytes, index: PackIndex) -> None:
        """Write a pack, then its index (both atomic): a reader that sees the index finds
        the pack complete."""
        ensure_inside(self._store_root, self.root)
        write_atomic(self.pack_path(index.name), data)
        write_atomic(self.index_path(index.name), dump_index(index))
        self._loaded = False

    def remove_pack(self, name: str) -> None:
        """Remove a pack's index, then the pack: every blob it held must be elsewhere."""
        for path in (self.index_path(name), self.pack_path(name)):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise StoreWriteError(path, error) from None
        descriptor = self._files.pop(name, None)
        if descriptor is not None:
            os.close(descriptor)
        self._loaded = False
