"""The blob directory: files named by digest, fanned out by the digest's first two hex digits.

``blobs/ab/ab12…(64 hex).zst``. This module only moves bytes: writing atomically,
reading, walking and deleting. Decoding and the digest check live in the store.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from castore._atomic import write_atomic

BLOBS_DIR: Final = "blobs"
BLOB_SUFFIX: Final = ".zst"
LFS_POINTER_PREFIX: Final = b"version https://git-lfs.github.com/spec/"
_BLOB_NAME = re.compile(r"([0-9a-f]{64})\.zst")
_FANOUT_NAME = re.compile(r"[0-9a-f]{2}")


def is_lfs_pointer(data: bytes) -> bool:
    """True for a git-lfs pointer file (what a clone holds before `git lfs pull`)."""
    return len(data) < 1024 and data.startswith(LFS_POINTER_PREFIX)


@dataclass(frozen=True, slots=True)
class BlobFile:
    digest: str
    path: Path
    size: int
    """Bytes on disk (compressed)."""
    mtime: float


class BlobDirectory:
    def __init__(self, store_root: Path) -> None:
        self.root = store_root / BLOBS_DIR
        self._prefix = f"{self.root}{os.sep}"

    def file_for(self, digest: str) -> str:
        """:meth:`path_for` as a string: replay reads build no pathlib objects."""
        return f"{self._prefix}{digest[:2]}{os.sep}{digest}{BLOB_SUFFIX}"

    def path_for(self, digest: str) -> Path:
        return Path(self.file_for(digest))

    def read(self, digest: str) -> bytes:
        """The blob's bytes as stored; FileNotFoundError if it is not there.

        Unbuffered: the file is read whole in one call, so a buffer would only add a copy."""
        with open(self.file_for(digest), "rb", buffering=0) as handle:  # noqa: PTH123
            return handle.read()

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        write_atomic(self.path_for(digest), frame, durable=durable)

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only succeeds once the fan-out dir is empty
            self.path_for(digest).parent.rmdir()

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
