"""``castore stats``: what a store holds, how much it dedups and compresses, its largest entries.

Also the reference map every upkeep command starts from: which entries use which blob.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castore._storage.index_folder import IndexFiles
from castore._storage.layout import CONFIG_NAME, PACK_SUFFIX, FileKind
from castore._storage.store import Store
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress


def _disk_bytes(paths: Iterable[Path]) -> int:
    return sum(path.stat().st_size for path in paths if path.is_file())


def index_files(indexes: IndexFiles) -> list[Path]:
    return [indexes.path(namespace) for namespace in indexes.namespaces()]


@dataclass
class StoreStats:
    namespaces: int
    entries: int
    blobs: int
    bytes: int
    """Bytes on disk: blobs, indexes and castore.json."""
    blob_bytes: int
    index_bytes: int
    uncompressed_bytes: int
    """Packed size of the distinct values (each blob once)."""
    logical_bytes: int
    """Packed size of every entry, duplicates counted each time: what dedup saves from."""
    orphans: int
    largest: list[dict[str, Any]] = field(default_factory=list)
    packs: int = 0
    packed_blobs: int = 0
    pack_bytes: int = 0
    """Bytes of the pack files (what LFS stores for them)."""
    pack_index_bytes: int = 0
    """Bytes of the pack indexes (plain git, beside the namespace indexes)."""

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.uncompressed_bytes if self.uncompressed_bytes else 1.0

    @property
    def compression_ratio(self) -> float:
        return self.uncompressed_bytes / self.blob_bytes if self.blob_bytes else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "namespaces": self.namespaces,
            "entries": self.entries,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "blob_bytes": self.blob_bytes,
            "index_bytes": self.index_bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "logical_bytes": self.logical_bytes,
            "dedup_ratio": round(self.dedup_ratio, 3),
            "compression_ratio": round(self.compression_ratio, 3),
            "orphans": self.orphans,
            "packs": self.packs,
            "packed_blobs": self.packed_blobs,
            "pack_bytes": self.pack_bytes,
            "pack_index_bytes": self.pack_index_bytes,
            "largest": self.largest,
        }


def store_stats(store: Store, *, top: int = 10, progress: Progress = no_progress) -> StoreStats:
    sizes: dict[str, int] = {}
    logical = 0
    entries = 0
    everything: list[tuple[int, str, str, str]] = []
    namespaces = store.namespaces()
    for namespace in progress(namespaces, len(namespaces), "reading indexes"):
        for key, entry in store.entries(namespace).items():
            entries += 1
            logical += entry.size
            sizes[entry.blob] = entry.size
            everything.append((entry.size, namespace, key, entry.blob))
    parts = UpkeepParts.of(store)
    blob_files = list(parts.blobs.walk())
    dictionaries = set(parts.config.current.dictionaries.values())
    orphans = [b for b in blob_files if b.digest not in sizes and b.digest not in dictionaries]
    uncompressed = sum(sizes[blob.digest] for blob in blob_files if blob.digest in sizes)
    blob_bytes = sum(blob.size for blob in blob_files)
    index_bytes = _disk_bytes(index_files(parts.indexes))
    config_bytes = _disk_bytes([store.root / CONFIG_NAME])
    files = parts.blobs.files
    pack_names = parts.blobs.packs.names()
    pack_bytes = sum(info.size for info in files.listing(FileKind.PACK) if info.name in pack_names)
    pack_index_bytes = sum(info.size for info in files.listing(FileKind.PACK_INDEX))
    packed = [blob for blob in blob_files if blob.path.suffix == PACK_SUFFIX]
    loose_bytes = blob_bytes - sum(blob.size for blob in packed)
    everything.sort(key=lambda item: (-item[0], item[1], item[2]))
    return StoreStats(
        namespaces=len(namespaces),
        entries=entries,
        blobs=len(blob_files),
        bytes=loose_bytes + pack_bytes + pack_index_bytes + index_bytes + config_bytes,
        blob_bytes=blob_bytes,
        index_bytes=index_bytes,
        uncompressed_bytes=uncompressed,
        logical_bytes=logical,
        orphans=len(orphans),
        largest=[
            {"namespace": ns, "key": key, "size": size, "blob": blob}
            for size, ns, key, blob in everything[:top]
        ],
        packs=len(pack_names),
        packed_blobs=len(packed),
        pack_bytes=pack_bytes,
        pack_index_bytes=pack_index_bytes,
    )
