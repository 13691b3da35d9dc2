"""Loose blobs: one file per blob, named by digest (``blobs/ab/ab…(64 hex).zst``).

Layout logic over the file seam: a loose blob is a file of kind ``FileKind.BLOB``. New
recordings land here, until ``castore pack`` (or the automatic packing after a session)
moves them into packs. Reads take one call into the seam: this is a replay's hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from castore._storage.files.seam import FileInfo, Files
from castore._storage.layout import BLOB_SUFFIX, BLOBS_DIR, FileKind, is_digest
from castore._storage.safe_files import FileRefused
from castore.errors import CorruptBlobError

_BLOB = FileKind.BLOB


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


class LooseBlobs:
    """The loose blobs of a store, over any :class:`Files`."""

    __slots__ = ("_read", "files")

    def __init__(self, files: Files) -> None:
        self.files = files
        self._read = files.read

    def __repr__(self) -> str:
        return f"LooseBlobs({self.files!r})"

    def read(self, digest: str) -> bytes | None:
        try:
            return self._read(_BLOB, digest)
        except FileRefused as refused:
            raise CorruptBlobError(self.location(digest), refused.reason) from None

    def exists(self, digest: str) -> bool:
        return self.files.stat(_BLOB, digest) is not None

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        self.files.write(_BLOB, digest, frame, durable=durable)

    def delete(self, digest: str) -> None:
        self.files.delete(_BLOB, digest)

    def walk(self) -> Iterator[FileInfo]:
        """Every loose blob file, in digest order."""
        return self.files.listing(_BLOB)

    def location(self, digest: str) -> Path:
        return self.files.location(_BLOB, digest)
