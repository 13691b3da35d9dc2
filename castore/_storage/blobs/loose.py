"""Loose blobs: one file per blob, named by digest, fanned out by its first two hex digits.

``blobs/ab/ab12…(64 hex).zst``. New recordings land here. Reads take one ``open`` and
build no ``pathlib`` objects: this is the replay hot path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from castore._storage.atomic import sync_all, write_atomic
from castore._storage.blobs.backend import BlobBackend, BlobFile
from castore._storage.layout import BLOB_SUFFIX, BLOBS_DIR, DIGEST, is_digest
from castore._storage.safe_files import FileRefused, ensure_inside, read_store_file
from castore.errors import CorruptBlobError, StoreWriteError

_BLOB_NAME: Final = re.compile(rf"({DIGEST.pattern}){re.escape(BLOB_SUFFIX)}")
#: Largest blob file read; zstd frames of values under the default value cap fit well under.
DEFAULT_MAX_FILE_BYTES: Final = 1024 * 1024 * 1024
_FANOUT_NAME: Final = re.compile(r"[0-9a-f]{2}")


def store_holding(path: Path) -> Path | None:
    """The root of the store a loose blob file sits in (``…/blobs/ab/ab….zst``), if any."""
    parents = path.resolve().parents
    if len(parents) > 2 and parents[1].name == BLOBS_DIR:
        return parents[2]
    return None


def digest_named_by(path: Path) -> str | None:
    """The digest a blob file's name carries, if it carries one."""
    name = path.name.removesuffix(BLOB_SUFFIX)
    return name if is_digest(name) else None


class LooseBlobs(BlobBackend):
    def __init__(self, store_root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = store_root / BLOBS_DIR
        self._store_root = str(store_root)
        self.max_file_bytes = max_file_bytes
        self._prefix = f"{self.root}{os.sep}"
        self._unsynced: list[Path] = []  # written with durable=False, not yet synced

    def __repr__(self) -> str:
        return f"LooseBlobs({str(self.root)!r})"

    def _file(self, digest: str) -> str:
        """The blob's file, its folders checked to lie inside the store (once each)."""
        fanout = f"{self._prefix}{digest[:2]}"
        ensure_inside(self._store_root, fanout)
        return f"{fanout}{os.sep}{digest}{BLOB_SUFFIX}"

    def location(self, digest: str) -> Path:
        return Path(self._file(digest))

    def read(self, digest: str) -> bytes | None:
        """One open, one fstat, one read: this is the replay hot path."""
        try:
            return read_store_file(self._file(digest), self.max_file_bytes)
        except FileRefused as refused:
            raise CorruptBlobError(self.location(digest), refused.reason) from None

    def exists(self, digest: str) -> bool:
        return os.path.exists(self._file(digest))  # noqa: PTH110 - string path, no Path built

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        path = self.location(digest)
        write_atomic(path, frame, durable=durable)
        if not durable:
            self._unsynced.append(path)

    def sync(self) -> None:
        if self._unsynced:
            sync_all(self._unsynced)
            self._unsynced = []

    def delete(self, digest: str) -> None:
        path = self.location(digest)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StoreWriteError(path, error) from None
        with contextlib.suppress(OSError):  # only succeeds once the fan-out dir is empty
            path.parent.rmdir()

    def quarantine(self, digest: str, folder: Path) -> Path:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = self.location(digest)
        target = folder / f"{path.name}.{stamp}"
        ensure_inside(folder.parent.parent, folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
        except OSError as error:
            raise StoreWriteError(path, error) from None
        return target

    def walk(self) -> Iterator[BlobFile]:
        """Every well-named blob file, in digest order."""
        for digest, path, stat in self._scan(strays=False):
            yield BlobFile(digest, path, stat.st_size, stat.st_mtime)

    def strays(self) -> Iterator[BlobFile]:
        """Files under ``blobs/`` that are not blobs: temporary files left by a killed
        writer, misplaced or misnamed files. ``digest`` is empty for these."""
        for _, path, stat in self._scan(strays=True):
            yield BlobFile("", path, stat.st_size, stat.st_mtime)

    def _scan(self, *, strays: bool) -> Iterator[tuple[str, Path, os.stat_result]]:
        ensure_inside(self._store_root, self.root)
        try:
            fanouts = sorted(os.scandir(self.root), key=lambda item: item.name)
        except FileNotFoundError:
            return
        for fanout in fanouts:
            if not fanout.is_dir(follow_symlinks=False):
                if strays:
                    yield "", Path(fanout.path), fanout.stat(follow_symlinks=False)
                continue
            good_dir = bool(_FANOUT_NAME.fullmatch(fanout.name))
            for item in sorted(os.scandir(fanout.path), key=lambda item: item.name):
                match = _BLOB_NAME.fullmatch(item.name)
                is_blob = (
                    good_dir
                    and match is not None
                    and match.group(1).startswith(fanout.name)
                    and item.is_file(follow_symlinks=False)
                )
                if is_blob != strays:
                    digest = match.group(1) if (is_blob and match) else ""
                    yield digest, Path(item.path), item.stat(follow_symlinks=False)
