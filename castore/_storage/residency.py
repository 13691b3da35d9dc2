"""Which files a replay needs, whether this checkout holds them, and the warm-up that
brings those it lacks (git-lfs pointers pulled, packs fetched from a remote).

The pytest session asks once, at collection, for the namespaces its tests replay from.
The first question is whether anything at all is missing, answered with a few stats (a
listing of ``packs/``, the dictionaries, the few loose blobs automatic packing leaves):
a complete checkout stops there, without reading an index. Only when something is
missing are the selected namespaces' indexes read, to fetch exactly their files.
"""

from __future__ import annotations

from collections.abc import Iterable

from castore._storage.blobs.stored import StoredBlobs
from castore._storage.config import ConfigFile
from castore._storage.files.pointers import MAX_POINTER_BYTES
from castore._storage.files.seam import FileHandle, Warmup
from castore._storage.index_folder import IndexFiles
from castore._storage.layout import FileKind
from castore._storage.writer import StoreWriter
from castore.errors import CastoreError


class Residency:
    """The files of a selection: which, whether here, and fetching them in one batch."""

    def __init__(
        self, writer: StoreWriter, config: ConfigFile, indexes: IndexFiles, blobs: StoredBlobs
    ) -> None:
        self._writer = writer
        self._config = config
        self._indexes = indexes
        self._blobs = blobs

    def digests_for(self, namespaces: Iterable[str]) -> set[str]:
        """The blobs (and dictionaries) that replaying ``namespaces`` reads. Unreadable
        namespaces are skipped (their replay reports them)."""
        digests = set(self._config.current.dictionaries.values())
        for namespace in namespaces:
            try:
                digests.update(entry.blob for entry in self._indexes.cached(namespace).values())
            except CastoreError:
                continue
        return digests

    def handles_for(self, namespaces: Iterable[str]) -> set[FileHandle]:
        """The files (packs, loose blobs, dictionaries) that replaying ``namespaces``
        reads, whole: what ``castore pull`` brings."""
        return self._blobs.handles_for(self.digests_for(namespaces))

    def complete(self) -> bool:
        """True when nothing a replay could need is missing: every pack an ``.idx`` names
        is here whole, every dictionary too, and no loose blob is a git-lfs pointer. A
        listing and a few stats; the loose blobs are few once packing runs by itself."""
        files = self._blobs.files
        wanted = [FileHandle(FileKind.PACK, name) for name in self._blobs.packs.names()]
        wanted += [
            FileHandle(FileKind.BLOB, blob) for blob in self._config.current.dictionaries.values()
        ]
        wanted += [
            FileHandle(FileKind.BLOB, info.name)
            for info in files.listing(FileKind.BLOB)
            if info.size < MAX_POINTER_BYTES
        ]
        return not files.missing(wanted)

    def warm_up(self, namespaces: Iterable[str]) -> list[Warmup]:
        """Fetch what replaying ``namespaces`` needs and this checkout lacks, once: under
        the store lock, so of several xdist workers only the first fetches. A complete
        checkout answers before the lock is even taken (a replay-only run never loads
        filelock, nor creates the store's lock file). Of a big pack on a remote, only the
        blobs the selection reads may be fetched (``StoredBlobs.warm_up``); a checkout
        that holds such cut frames is never complete, so its sessions take the lock and
        find them there."""
        if self.complete():
            return []
        with self._writer.lock_for_reading():
            return self._blobs.warm_up(self.digests_for(namespaces))

    def warm_up_blobs(self, digests: Iterable[str]) -> list[Warmup]:
        """As :meth:`warm_up`, for the files that hold ``digests`` (and the dictionaries)."""
        wanted = {*digests, *self._config.current.dictionaries.values()}
        with self._writer.lock_for_reading():
            return self._blobs.warm_up(wanted)
