"""Every blob a store holds, packed or loose: the layout over the file seam.

A lookup asks the packs first, because that costs one table lookup where a loose miss
costs a failed ``open``; a blob held both ways (packed, its loose copy not yet collected)
is the same bytes either way, as its digest says. New blobs are written loose;
``castore pack`` moves them into packs; deleting removes the loose copy only (a packed
blob leaves when gc rewrites its pack).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from castore._storage.blobs.cut import CutFrames
from castore._storage.blobs.loose import LooseBlobs
from castore._storage.blobs.packed import PackedBlobs
from castore._storage.files.folder import FolderFiles
from castore._storage.files.seam import (
    Cut,
    FileHandle,
    Files,
    Warmup,
    find_files,
    merged_warmups,
)
from castore._storage.files.wrappers import ReadOnlyFiles, ReadThroughFiles
from castore._storage.layout import FileKind
from castore.errors import IndexFormatError, ReadOnlyStoreError

if TYPE_CHECKING:
    from castore._storage.blobs.blob_file import BlobFile


#: A pack this checkout lacks is fetched whole, unless it is at least this big and the
#: blobs the selection reads of it, each counted :data:`CUT_REQUEST_BYTES` bigger for its
#: request, come to at most :data:`CUT_AT_MOST` of it: then each of those blobs is fetched
#: alone, one ranged read of the remote pack (a CI shard that needs 9 blobs of an 8 MiB
#: pack fetches 9 frames). A request costs a round trip: against object storage, 16 in
#: flight, about as long as 64 KiB more of a download would take.
CUT_FROM_PACK_BYTES: Final = 1 << 20
CUT_REQUEST_BYTES: Final = 64 * 1024
CUT_AT_MOST: Final = 0.25


class StoredBlobs:
    """A store's blobs as readers see them: packs first, then loose files.

    ``cut`` holds frames cut out of packs this checkout lacks (a remote tier's warm-up
    keeps them in the store's local state, ``cut.py``): a reader finds them before it
    would open, and so fetch whole, such a pack."""

    def __init__(
        self, files: Files, table_path: Path | None = None, cut: CutFrames | None = None
    ) -> None:
        self.files = files
        self.loose = LooseBlobs(files)
        self.cut = cut
        self.packs = PackedBlobs(files, table_path, cut)
        self._read_listed = self.packs.read_listed
        self._read_loose = self.loose.read

    def __repr__(self) -> str:
        return f"StoredBlobs({self.files!r})"

    def read(self, digest: str) -> bytes | None:
        """The blob's frame as stored, or None if the store holds it nowhere."""
        frame = self._read_listed(digest)
        if frame is None:
            frame = self._read_loose(digest)
        if frame is None:  # packed by another process since the packs were listed?
            frame = self.packs.read(digest)
        return frame

    def exists(self, digest: str) -> bool:
        return self.loose.exists(digest) or self.packs.exists(digest)

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        """Store a frame as a loose blob (replacing a damaged copy)."""
        self.loose.write(digest, frame, durable=durable)

    def sync(self) -> None:
        self.files.sync()

    def delete(self, digest: str) -> None:
        """Remove a loose copy; a packed blob leaves when gc rewrites its pack."""
        self.loose.delete(digest)

    def walk(self) -> Iterator[BlobFile]:
        """Every blob once, in digest order; a blob held both ways is listed as packed."""
        from castore._storage.blobs.blob_file import BlobFile  # noqa: PLC0415 - listings only

        loose = self.walk_loose()
        packed = (BlobFile(*found) for found in self.packs.walk())
        next_loose, next_packed = next(loose, None), next(packed, None)
        while next_loose is not None or next_packed is not None:
            if next_packed is None or (
                next_loose is not None and next_loose.digest < next_packed.digest
            ):
                assert next_loose is not None
                yield next_loose
                next_loose = next(loose, None)
                continue
            if next_loose is not None and next_loose.digest == next_packed.digest:
                next_loose = next(loose, None)
            yield next_packed
            next_packed = next(packed, None)

    def walk_loose(self) -> Iterator[BlobFile]:
        """The loose blob files alone (packed blobs are listed by their packs)."""
        from castore._storage.blobs.blob_file import BlobFile  # noqa: PLC0415 - listings only

        for info in self.loose.walk():
            yield BlobFile(info.name, self.loose.location(info.name), info.size, info.mtime)

    def location(self, digest: str) -> Path:
        if self.packs.exists(digest) and not self.loose.exists(digest):
            return self.packs.location(digest)
        return self.loose.location(digest)

    def handles_for(self, digests: Iterable[str]) -> set[FileHandle]:
        """The files that hold ``digests``: a handle per pack, not per blob, else the
        loose file (what a warm-up fetches)."""
        handles: set[FileHandle] = set()
        for digest in digests:
            pack = self.packs.pack_of(digest)
            if pack is not None:
                handles.add(FileHandle(FileKind.PACK, pack))
            else:
                handles.add(FileHandle(FileKind.BLOB, digest))
        return handles

    def warm_up(self, digests: Iterable[str]) -> list[Warmup]:
        """Bring close, in one batch, the files that hold ``digests``: whole packs and
        loose blobs through the backend's own warm-up, and, from a remote tier, only the
        frames the selection reads of a big pack it barely uses (:data:`CUT_AT_MOST`).
        A pack whose frames the remote lacks goes to the backend's warm-up after all
        (a checkout may still have it in git-lfs)."""
        wanted = set(digests)
        tier, cut = find_files(self.files, ReadThroughFiles), self.cut
        if tier is None or cut is None:
            return self.files.warm_up(self.handles_for(wanted))
        cut_packs, cuts = self._cuts(wanted, tier, cut)
        reports = self.files.warm_up(self.handles_for(wanted) - cut_packs)
        if cuts:
            report, absent = tier.warm_up_cuts(cuts, cut.files_of)
            reports.append(report)
            if absent:
                reports += self.files.warm_up({cut.source for cut in absent})
        return merged_warmups(reports)

    def _cuts(
        self, wanted: set[str], tier: ReadThroughFiles, cut: CutFrames
    ) -> tuple[set[FileHandle], list[Cut]]:
        """The packs the checkout lacks that are better cut than fetched whole, and the
        frames of them still to fetch (those not cut by an earlier run)."""
        by_pack: dict[str, list[tuple[str, int, int]]] = {}
        for digest in wanted:
            slot = self.packs.slot_of(digest)
            if slot is not None:
                by_pack.setdefault(slot[0], []).append((digest, slot[1], slot[2]))
        lacking = tier.local.missing([FileHandle(FileKind.PACK, name) for name in sorted(by_pack)])
        cut_packs: set[FileHandle] = set()
        cuts: list[Cut] = []
        for pack in lacking:
            slots = by_pack[pack.name]
            try:
                size = self.packs.read_index(pack.name).size
            except IndexFormatError:
                continue  # fetched whole: reading it reports the damaged index by name
            cost = sum(slot[2] for slot in slots) + CUT_REQUEST_BYTES * len(slots)
            if size < CUT_FROM_PACK_BYTES or cost > size * CUT_AT_MOST:
                continue
            cut_packs.add(pack)
            cuts += [
                Cut(pack, offset, length, FileHandle(FileKind.BLOB, digest))
                for digest, offset, length in sorted(slots, key=lambda slot: slot[1])
                if not cut.holds(pack.name, digest)
            ]
        return cut_packs, cuts

    def drop_cut(self, digest: str) -> bool:
        """Remove the frame of ``digest`` cut from its pack, if one is kept: it failed its
        check, and the pack is read (fetched whole) instead. True if there was one."""
        if self.cut is None:
            return False
        slot = self.packs.slot_of(digest)
        return slot is not None and self.cut.drop(slot[0], digest)

    def folder(self) -> FolderFiles | None:
        """The local folder under any wrappers, if the store has one and may change it."""
        if find_files(self.files, ReadOnlyFiles) is not None:
            return None
        return find_files(self.files, FolderFiles)

    def strays(self) -> Iterator[BlobFile]:
        """Files under ``blobs/`` and ``packs/`` that are not a store's: leftovers of
        killed writers, misplaced files. ``digest`` is ''."""
        from castore._storage.blobs.blob_file import BlobFile  # noqa: PLC0415 - listings only

        folder = find_files(self.files, FolderFiles)
        if folder is None:
            return
        for path in folder.strays():
            status = path.lstat()
            yield BlobFile("", path, status.st_size, status.st_mtime)

    def unpaired_packs(self) -> list[str]:
        """Packs no ``.idx`` names: another branch's (with pack data kept out of git, a
        checkout leaves them), or a killed packer's. Nothing reads them; gc removes them."""
        indexed = set(self.packs.names())
        return [info.name for info in self.files.listing(FileKind.PACK) if info.name not in indexed]

    def remove_stray(self, path: Path) -> None:
        folder = self.folder()
        if folder is None:
            raise ReadOnlyStoreError(f"delete {path.name}", path)
        folder.remove_stray(path)

    def quarantine(self, digest: str, folder: Path) -> Path:
        """Move a damaged loose blob aside into ``folder``; returns where it went."""
        local = self.folder()
        if local is None:
            raise ReadOnlyStoreError(f"quarantine blob {digest[:16]}…", self.location(digest))
        return local.quarantine(FileKind.BLOB, digest, folder)
