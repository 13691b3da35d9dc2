"""Packed blobs: frames inside immutable pack files (``packfile.py``), found by digest.

Layout logic over the file seam: a pack and its ``.idx`` are two files of the store
(``FileKind.PACK`` and ``FileKind.PACK_INDEX``), wherever they live. Finding a blob takes
one lookup in the pack table (``pack_table.py``: which pack, where in it), loaded the
first time a packed blob is asked for, and one ranged read on a pack kept open. A pack is
opened the first time one of its blobs is read, so a session opens the packs its tests
need and no other.

Packs never change once written. :meth:`PackedBlobs.add_pack` and
:meth:`PackedBlobs.remove_pack` are the only ways in and out, used by ``castore pack``
and ``castore gc`` under the store lock; a reader that finds a blob in no pack looks at
the listing again when it changed (another process packed or collected).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from castore._storage.blobs.cut import CutFrames
from castore._storage.blobs.pack_table import (
    PackTable,
    build_table,
    listing_key,
    load_table,
    save_table,
)
from castore._storage.blobs.packfile import (
    PACK_MAGIC,
    PackIndex,
    dump_index,
    pack_digest,
    parse_index,
    read_trailer,
)
from castore._storage.files.pointers import MAX_POINTER_BYTES, is_lfs_pointer
from castore._storage.files.seam import Files, RangeReader, find_files
from castore._storage.files.wrappers import ReadThroughFiles
from castore._storage.layout import FileKind
from castore._storage.safe_files import FileRefused, ensure_inside
from castore.errors import (
    CorruptBlobError,
    IndexFormatError,
    LfsPointerError,
    LostBlobError,
    MissingBlobError,
    UnsafePathError,
)

_PACK = FileKind.PACK
_INDEX = FileKind.PACK_INDEX


class PackedBlobs:
    """The packs of a store, over any :class:`Files`; ``table_path`` is where the pack
    table is kept between sessions (None: in memory only)."""

    def __init__(
        self, files: Files, table_path: Path | None = None, cut: CutFrames | None = None
    ) -> None:
        self.files = files
        self._table_path = table_path
        #: Frames cut out of packs this checkout lacks (``cut.py``): asked before a pack
        #: is opened, since opening one the checkout lacks fetches it whole.
        self._cut = cut
        #: The table and the packs opened through it, replaced together (never changed in
        #: place), so a thread reading while another reloads sees one consistent pair;
        #: what a replaced pair holds open is closed when its last reader lets go.
        self._loaded: _Loaded | None = None
        self._signature: object = None
        self._listed: set[str] = set()
        #: Pack indexes that could not be read, by pack name (filled by :meth:`indexes`).
        #: Their packs are read through the pack's own table where it is sound
        #: (``recovered``); otherwise a blob they may hold is reported with the index's
        #: error, not as simply missing.
        self.damaged: dict[str, IndexFormatError] = {}
        self.recovered: set[str] = set()

    def __repr__(self) -> str:
        return f"PackedBlobs({self.files!r})"

    # --- the table -----------------------------------------------------------------------

    def _load(self) -> _Loaded:
        """The pack table for the ``.idx`` files as listed now: kept from an earlier
        session if it was built for this listing, else built (and kept) anew."""
        self._signature = self.files.signature(_INDEX)
        listing = sorted(self.files.listing(_INDEX), key=lambda info: info.name)
        self._listed = {info.name for info in listing}
        key = listing_key((info.name, info.size, int(info.mtime * 1e9)) for info in listing)
        table_path = self._kept_table_path()
        table = load_table(table_path, key) if table_path else None
        if table is None:
            packs = []
            for info in listing:
                index = self._readable_index(info.name)
                if index is not None:
                    slots = [(bytes.fromhex(b), s.offset, s.length) for b, s in index.slots.items()]
                    packs.append((info.name, slots))
            data = build_table(key, packs)
            if table_path is not None:
                save_table(table_path, data)
            table = PackTable(data)
        loaded = _Loaded(table, [None] * len(table.names))
        self._loaded = loaded
        return loaded

    def _kept_table_path(self) -> Path | None:
        """Where the table is kept between sessions, if that folder lies inside the store
        (a planted ``.castore`` symlink makes the table live in memory instead)."""
        path = self._table_path
        if path is None:
            return None
        try:
            ensure_inside(path.parent.parent, path.parent)
        except UnsafePathError:
            return None
        return path

    def _readable_index(self, name: str) -> PackIndex | None:
        """A pack's index, or the table inside the pack when its ``.idx`` is damaged and
        the pack is whole; None when neither can be read."""
        try:
            return self.read_index(name)
        except IndexFormatError:
            return self._index_from_pack(name)

    def _changed(self) -> bool:
        signature = self.files.signature(_INDEX)
        return signature is None or signature != self._signature

    def _table_now(self) -> PackTable:
        loaded = self._loaded if self._loaded is not None else self._load()
        return loaded.table

    def read_index(self, name: str) -> PackIndex:
        """A pack's ``.idx``, parsed and checked; IndexFormatError names it."""
        path = self.index_path(name)
        try:
            raw = self.files.read(_INDEX, name)
        except FileRefused as refused:
            raise IndexFormatError(path, refused.reason) from None
        if raw is None:  # removed by a concurrent gc since the listing
            return PackIndex(name, 0, 0, {})
        return parse_index(raw, path)

    def _index_from_pack(self, name: str) -> PackIndex | None:
        """A damaged index rebuilt from the pack's own table, if the pack is whole (its
        content still hashes to its name)."""
        try:
            data = self.files.read(_PACK, name)
        except FileRefused:
            return None
        if data is None or pack_digest(data) != name:
            return None
        try:
            slots = read_trailer(data, self.pack_path(name))
        except IndexFormatError:
            return None
        return PackIndex(name, len(data), 0, slots)

    def indexes(self) -> dict[str, PackIndex]:
        """Every pack's index by pack name, as stored now, each read in full (upkeep);
        also finds which are ``damaged`` and which of those were ``recovered``."""
        found: dict[str, PackIndex] = {}
        self.damaged, self.recovered = {}, set()
        for info in sorted(self.files.listing(_INDEX), key=lambda info: info.name):
            try:
                found[info.name] = self.read_index(info.name)
            except IndexFormatError as error:
                self.damaged[info.name] = error
                recovered = self._index_from_pack(info.name)
                if recovered is not None:
                    found[info.name] = recovered
                    self.recovered.add(info.name)
        return found

    def names(self) -> list[str]:
        """Every pack named by an ``.idx``, without reading any (a listing)."""
        return sorted(info.name for info in self.files.listing(_INDEX))

    def pack_of(self, digest: str) -> str | None:
        """The name of the pack holding ``digest``, if a pack does."""
        table = self._table_now()
        found = table.locate(digest)
        if found is None and self._changed():
            table = self._load().table
            found = table.locate(digest)
        return None if found is None else table.names[found[0]]

    def slot_of(self, digest: str) -> tuple[str, int, int] | None:
        """(pack name, offset, length) of a packed blob's frame, or None."""
        table = self._table_now()
        found = table.locate(digest)
        if found is None:
            return None
        ordinal, offset, length = found
        return table.names[ordinal], offset, length

    def pack_path(self, name: str) -> Path:
        return self.files.location(_PACK, name)

    def index_path(self, name: str) -> Path:
        return self.files.location(_INDEX, name)

    # --- reading -------------------------------------------------------------------------

    def read(self, digest: str) -> bytes | None:
        """The frame, looking at the listing again if the blob is in no pack and the
        listing changed since it was read (another process packed or collected)."""
        frame = self.read_listed(digest)
        if frame is None and self._changed():
            self._load()
            frame = self.read_listed(digest)
        if frame is None:
            unreadable = sorted(self._listed - set(self._table_now().names))
            for name in unreadable:  # the blob may sit in a pack whose index is damaged
                self.read_index(name)  # raises the error that names the index
        return frame

    def read_listed(self, digest: str) -> bytes | None:
        """The frame if the table as last loaded lists the blob: no system call on a
        miss, so a store of loose blobs pays one lookup for asking the packs first."""
        loaded = self._loaded if self._loaded is not None else self._load()
        table = loaded.table
        found = table.locate(digest)
        if found is None:
            return None
        ordinal, offset, length = found
        reader = loaded.readers[ordinal]
        if reader is None:
            cut = self._cut
            if cut is not None and (frame := cut.read(table.names[ordinal], digest, length)):
                return frame
            reader = self._open(loaded, ordinal, digest)
        frame = reader.pread(length, offset)
        if len(frame) != length:
            raise CorruptBlobError(
                self.pack_path(table.names[ordinal]),
                f"the pack ends before blob {digest[:16]}… (truncated?); restore it with "
                "`git lfs pull` or from git",
            )
        return frame

    def _open(self, loaded: _Loaded, ordinal: int, digest: str) -> RangeReader:
        name = loaded.table.names[ordinal]
        path = self.pack_path(name)
        try:
            reader = self.files.open_ranges(_PACK, name)
        except FileRefused as refused:
            raise CorruptBlobError(path, f"the pack cannot be opened ({refused.reason})") from None
        if reader is None:
            tier = find_files(self.files, ReadThroughFiles)
            if tier is not None:
                raise LostBlobError(path, digest, name, tier.label)
            raise MissingBlobError(path)
        try:
            head = reader.pread(MAX_POINTER_BYTES, 0)
        except BaseException:
            reader.close()
            raise
        problem: Exception | None = None
        if is_lfs_pointer(head) and reader.size < MAX_POINTER_BYTES:
            problem = LfsPointerError(path)
        elif not head.startswith(PACK_MAGIC):
            problem = CorruptBlobError(path, "it is not a castore pack (bad magic)")
        if problem is not None:
            reader.close()
            raise problem
        loaded.readers[ordinal] = reader
        return reader

    def check_pack(self, name: str, index: PackIndex) -> tuple[str, Path, str] | None:
        """(fault kind, file, what to do) if the pack is not whole: absent, an LFS pointer,
        content that does not hash to its name, or a table that disagrees with its index."""
        path = self.pack_path(name)
        try:
            data = self.files.read(_PACK, name)
        except FileRefused as refused:
            return "corrupt", path, refused.reason
        if data is None:
            return "missing", path, "its index is here but the pack is not; restore it"
        if is_lfs_pointer(data):
            return "lfs-pointer", path, "a git-lfs pointer: run `git lfs pull`"
        problem = pack_problem(name, data, path)
        if problem is not None:
            return "corrupt", path, problem
        if read_trailer(data, path) != index.slots:
            detail = "it does not match the table inside its pack; restore it from git"
            return "index", self.index_path(name), detail
        return None

    def exists(self, digest: str) -> bool:
        return self.pack_of(digest) is not None

    def location(self, digest: str) -> Path:
        name = self.pack_of(digest)
        return self.pack_path(name) if name else self.files.location(_PACK, "0" * 64).parent

    def walk(self) -> Iterator[tuple[str, Path, int, float]]:
        """(digest, pack file, frame length, pack mtime) of every packed blob, once each
        (in the first pack by name that holds it), in digest order."""
        found: dict[str, tuple[str, Path, int, float]] = {}
        for name, index in self.indexes().items():
            path = self.pack_path(name)
            info = self.files.stat(_PACK, name)
            mtime = info.mtime if info is not None else 0.0
            for blob, slot in index.slots.items():
                found.setdefault(blob, (blob, path, slot.length, mtime))
        for blob in sorted(found):
            yield found[blob]

    # --- writing (castore pack and gc only) ------------------------------------------------

    def add_pack(self, data: bytes, index: PackIndex) -> None:
        """Write a pack, then its index: a reader that sees the index finds the pack whole."""
        self.files.write(_PACK, index.name, data)
        self.files.write(_INDEX, index.name, dump_index(index))
        self.close()

    def remove_pack(self, name: str) -> None:
        """Remove a pack's index, then the pack: every blob it held must be elsewhere."""
        self.files.delete(_INDEX, name)
        self.files.delete(_PACK, name)
        self.close()

    def close(self) -> None:
        """Forget the table and the open packs: the next read loads them anew. Nothing is
        closed under a reader in another thread; the old pair goes when it is unused."""
        self._loaded = None


class _Loaded(NamedTuple):
    table: PackTable
    readers: list[RangeReader | None]
    """By pack ordinal: the packs opened so far."""


def pack_problem(name: str, data: bytes, path: Path) -> str | None:
    """What is wrong with a pack's bytes, or None: they must hash to its name and carry a
    sound table (how a downloaded pack is checked before it is kept)."""
    if pack_digest(data) != name:
        return (
            "its content does not hash to its name (damaged or truncated); restore it "
            "with `git lfs pull` or from git, or re-record and `castore pack --repack`"
        )
    with contextlib.suppress(IndexFormatError):
        read_trailer(data, path)
        return None
    return "its table is damaged"
