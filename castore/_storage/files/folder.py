"""A store's files in a local folder: the checkout's ``blobs/`` and ``packs/``.

Reads follow no symlink at the last component and accept regular files only
(``safe_files``); every folder on the way is checked to lie inside the store. Loose blob
reads build no ``pathlib`` objects and take one ``open``: they are the replay hot path.
Packs are read by ranges with ``pread`` on a descriptor the layout above keeps open,
never memory-mapped: a mapped file that shrinks under the reader (a hostile checkout, a
half-finished ``git lfs pull``) kills the process with SIGBUS, where ``pread`` just
returns fewer bytes, which is an error castore can name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from castore._storage.atomic import sync_all, write_atomic
from castore._storage.files.pointers import MAX_POINTER_BYTES, is_lfs_pointer
from castore._storage.files.seam import FileInfo, Files
from castore._storage.layout import (
    BLOB_SUFFIX,
    BLOBS_DIR,
    DIGEST,
    MAX_FILE_BYTES,
    PACK_INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS_DIR,
    FileKind,
    is_digest,
)
from castore._storage.safe_files import FileRefused, ensure_inside, read_store_file
from castore.errors import StoreWriteError

_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
#: Compiled by the walk that reads them (re caches them), never at import: only upkeep
#: walks the loose blobs, never a replay.
_BLOB_NAME: Final = rf"({DIGEST.pattern}){re.escape(BLOB_SUFFIX)}"
_FANOUT_NAME: Final = r"[0-9a-f]{2}"
_SUFFIXES: Final = {FileKind.PACK: PACK_SUFFIX, FileKind.PACK_INDEX: PACK_INDEX_SUFFIX}


class OpenFile:
    """A file opened for ranged reads; ``pread`` is ``os.pread`` bound to its descriptor,
    so a read through it costs what ``os.pread`` costs."""

    __slots__ = ("_descriptor", "pread", "size")

    def __init__(self, descriptor: int, size: int) -> None:
        self._descriptor = descriptor
        self.size = size
        self.pread = functools.partial(os.pread, descriptor)

    def close(self) -> None:
        if self._descriptor >= 0:
            with contextlib.suppress(OSError):
                os.close(self._descriptor)
            self._descriptor = -1

    def __del__(self) -> None:
        self.close()


#: The :meth:`FolderFiles.signature` of a folder that does not exist.
_ABSENT: Final = "absent"


class FolderFiles(Files):
    """The files under a store's root folder, laid out as ``layout.relative_path`` says."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self._blobs = f"{root}{os.sep}{BLOBS_DIR}"
        self._packs = f"{root}{os.sep}{PACKS_DIR}"
        self._unsynced: list[Path] = []  # written with durable=False, not yet synced

    def __repr__(self) -> str:
        return f"FolderFiles({self._root!r})"

    def describe(self) -> str:
        return self._root

    def _path(self, kind: FileKind, name: str) -> str:
        """The file's path, its folders checked to lie inside the store (once each)."""
        if kind is FileKind.BLOB:
            folder = f"{self._blobs}{os.sep}{name[:2]}"
            ensure_inside(self._root, folder)
            return f"{folder}{os.sep}{name}{BLOB_SUFFIX}"
        ensure_inside(self._root, self._packs)
        return f"{self._packs}{os.sep}{name}{_SUFFIXES[kind]}"

    def location(self, kind: FileKind, name: str) -> Path:
        return Path(self._path(kind, name))

    # --- reading ---------------------------------------------------------------------

    def read(self, kind: FileKind, name: str) -> bytes | None:
        """One open, one fstat, one read: a loose blob's replay."""
        return read_store_file(self._path(kind, name), MAX_FILE_BYTES[kind])

    def open_ranges(self, kind: FileKind, name: str) -> OpenFile | None:
        path = self._path(kind, name)
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if error.errno == errno.ELOOP:
                raise FileRefused(
                    "it is a symbolic link, and castore follows none in a store"
                ) from None
            raise FileRefused(f"it cannot be opened ({error.strerror})") from None
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            os.close(descriptor)
            raise FileRefused("it is not a regular file")
        return OpenFile(descriptor, status.st_size)

    def signature(self, kind: FileKind) -> object:
        """The folder's modification time; a folder not made yet has a signature too
        (its creation changes it), or a store without packs would list and reload its
        pack table for every blob it is asked about, each put of a recording included."""
        folder = self._blobs if kind is FileKind.BLOB else self._packs
        try:
            return os.stat(folder).st_mtime_ns  # noqa: PTH116 - string paths
        except FileNotFoundError:
            return _ABSENT
        except OSError:
            return None

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        try:
            status = os.lstat(self._path(kind, name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        return FileInfo(kind, name, status.st_size, status.st_mtime)

    def holds(self, kind: FileKind, name: str) -> bool:
        """Present, a regular file, and not a git-lfs pointer standing in for it."""
        info = self.stat(kind, name)
        if info is None:
            return False
        if info.size >= MAX_POINTER_BYTES:
            return True
        try:
            data = read_store_file(self._path(kind, name), MAX_POINTER_BYTES)
        except FileRefused:
            return False
        return data is not None and not is_lfs_pointer(data)

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        if kind is FileKind.BLOB:
            for name, path in self._scan_blobs(strays=False):
                status = os.lstat(path)
                yield FileInfo(kind, name, status.st_size, status.st_mtime)
            return
        suffix = _SUFFIXES[kind]
        for item in self._pack_folder():
            name = item.name.removesuffix(suffix)
            if name != item.name and is_digest(name) and item.is_file(follow_symlinks=False):
                status = item.stat(follow_symlinks=False)
                yield FileInfo(kind, name, status.st_size, status.st_mtime)

    def _pack_folder(self) -> list[os.DirEntry[str]]:
        ensure_inside(self._root, self._packs)
        try:
            return sorted(os.scandir(self._packs), key=lambda item: item.name)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def folder_times(self) -> dict[str, int]:
        """The modification time (ns) of ``blobs/``, each fan-out folder and ``packs/``:
        any file written, renamed or removed in them changes one. A listing of ``blobs/``
        and a stat per folder, no file opened."""
        times: dict[str, int] = {}
        for folder in (self._blobs, self._packs):
            try:
                times[folder] = os.stat(folder).st_mtime_ns  # noqa: PTH116 - string paths
            except OSError:
                continue
        ensure_inside(self._root, self._blobs)
        try:
            fanouts = list(os.scandir(self._blobs))
        except (FileNotFoundError, NotADirectoryError):
            return times
        for fanout in fanouts:
            if fanout.is_dir(follow_symlinks=False):
                times[fanout.path] = fanout.stat(follow_symlinks=False).st_mtime_ns
        return times

    def strays(self) -> Iterator[Path]:
        """Files under ``blobs/`` and ``packs/`` that are not well-named files of a store:
        temporary files of killed writers, misplaced or misnamed files, symlinks."""
        for _, path in self._scan_blobs(strays=True):
            yield Path(path)
        for item in self._pack_folder():
            stem, _, suffix = item.name.rpartition(".")
            well_named = is_digest(stem) and f".{suffix}" in _SUFFIXES.values()
            if not (well_named and item.is_file(follow_symlinks=False)):
                yield Path(item.path)

    def _scan_blobs(self, *, strays: bool) -> Iterator[tuple[str, str]]:
        ensure_inside(self._root, self._blobs)
        blob_name, fanout_name = re.compile(_BLOB_NAME), re.compile(_FANOUT_NAME)
        try:
            fanouts = sorted(os.scandir(self._blobs), key=lambda item: item.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for fanout in fanouts:
            if not fanout.is_dir(follow_symlinks=False):
                if strays:
                    yield "", fanout.path
                continue
            good_dir = bool(fanout_name.fullmatch(fanout.name))
            for item in sorted(os.scandir(fanout.path), key=lambda item: item.name):
                match = blob_name.fullmatch(item.name)
                is_blob = (
                    good_dir
                    and match is not None
                    and match.group(1).startswith(fanout.name)
                    and item.is_file(follow_symlinks=False)
                )
                if is_blob != strays:
                    yield (match.group(1) if (is_blob and match) else ""), item.path

    # --- writing ---------------------------------------------------------------------

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        """Atomic, and replacing: a damaged local copy is rewritten whole."""
        if not is_digest(name):
            raise ValueError(f"not a file name of a store: {name!r}")
        path = Path(self._path(kind, name))
        write_atomic(path, data, durable=durable)
        if not durable:
            self._unsynced.append(path)

    def sync(self) -> None:
        if self._unsynced:
            sync_all(self._unsynced)
            self._unsynced = []

    def delete(self, kind: FileKind, name: str) -> None:
        path = self.location(kind, name)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StoreWriteError(path, error) from None
        if kind is FileKind.BLOB:
            with contextlib.suppress(OSError):  # only succeeds once the fan-out is empty
                path.parent.rmdir()

    def remove_stray(self, path: Path) -> None:
        """Delete a stray file (as :meth:`strays` lists them)."""
        ensure_inside(self._root, path.parent)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StoreWriteError(path, error) from None

    def quarantine(self, kind: FileKind, name: str, folder: Path) -> Path:
        """Move a damaged file aside into ``folder``; returns where it went."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.location(kind, name)
        target = folder / f"{path.name}.{stamp}"
        ensure_inside(folder.parent.parent, folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
        except OSError as error:
            raise StoreWriteError(path, error) from None
        return target
