"""The parts of a store that upkeep works with, taken from the store's internal face in
this one place. Each upkeep step is then handed only the part it needs (the pack set,
the verified reader, the writer), as restic's repository hands out narrow interfaces."""

from __future__ import annotations

from dataclasses import dataclass

from castore._storage.blobs.stored import StoredBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.compression import Compression
from castore._storage.config import ConfigFile
from castore._storage.index_folder import IndexFiles
from castore._storage.residency import Residency
from castore._storage.store import Store, internals
from castore._storage.writer import StoreWriter


@dataclass(frozen=True)
class UpkeepParts:
    config: ConfigFile
    indexes: IndexFiles
    blobs: StoredBlobs
    reader: VerifiedBlobs
    compression: Compression
    writer: StoreWriter
    residency: Residency

    @classmethod
    def of(cls, store: Store) -> UpkeepParts:
        core = internals(store)
        return cls(
            core.config,
            core.indexes,
            core.blobs,
            core.reader,
            core.compression,
            core.writer,
            core.residency,
        )
