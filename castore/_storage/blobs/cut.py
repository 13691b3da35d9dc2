"""Frames cut out of packs this checkout lacks: the few blobs a remote replay reads of a
big pack, fetched by ranged reads instead of the whole pack (``StoredBlobs.warm_up``).

They are kept in the store's local state, a folder per pack laid out as loose blobs
(``.castore/cut-frames/<pack>/blobs/ab/ab….zst``). A pack is named by the digest of its
bytes, so a frame kept under its name is exactly that pack's slot: another pack holding
the same blob (another branch's, compressed with another dictionary) never reads it.

Reading them never fails a replay. A frame that cannot be read, or is not its slot's
length (a crash before the batch was flushed), is a miss, and the pack is read instead,
which fetches it whole; a frame that fails its digest check is dropped the same way
(``VerifiedBlobs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from castore._storage.blobs.loose import LooseBlobs
from castore._storage.files.folder import FolderFiles
from castore._storage.files.seam import Files
from castore._storage.layout import is_digest
from castore._storage.safe_files import FileRefused
from castore.errors import CastoreError

#: What reading or listing a local-state folder may raise; each is a miss here.
_UNREADABLE = (CastoreError, FileRefused, OSError)


class CutFrames:
    """The cut frames of a store, by pack and digest."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._packs: dict[str, LooseBlobs] = {}

    def __repr__(self) -> str:
        return f"CutFrames({str(self.folder)!r})"

    def _blobs(self, pack: str) -> LooseBlobs:
        blobs = self._packs.get(pack)
        if blobs is None:
            blobs = self._packs[pack] = LooseBlobs(FolderFiles(self.folder / pack))
        return blobs

    def files_of(self, pack: str) -> Files:
        """The folder that holds ``pack``'s cut frames (where a warm-up writes them)."""
        return self._blobs(pack).files

    def read(self, pack: str, digest: str, length: int) -> bytes | None:
        """The frame of ``digest`` cut from ``pack``, if one is kept whole."""
        try:
            frame = self._blobs(pack).read(digest)
        except _UNREADABLE:
            return None
        return frame if frame is not None and len(frame) == length else None

    def holds(self, pack: str, digest: str) -> bool:
        try:
            return self._blobs(pack).exists(digest)
        except _UNREADABLE:
            return False

    def drop(self, pack: str, digest: str) -> bool:
        """Remove a kept frame; True if there was one."""
        if not self.holds(pack, digest):
            return False
        try:
            self._blobs(pack).delete(digest)
        except _UNREADABLE:
            return False
        return True

    def walk(self) -> Iterator[tuple[str, str]]:
        """(pack, digest) of every kept frame."""
        try:
            packs = sorted(path.name for path in self.folder.iterdir() if is_digest(path.name))
        except _UNREADABLE:
            return
        for pack in packs:
            try:
                digests = [info.name for info in self._blobs(pack).walk()]
            except _UNREADABLE:
                continue
            for digest in digests:
                yield pack, digest
