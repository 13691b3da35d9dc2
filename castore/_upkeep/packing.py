"""``castore pack``, the packing a session runs by itself, and gc's pack rewriting.

Blobs are packed in the order of the namespaces that reference them (namespaces sorted,
keys sorted within each), so a test module's recordings sit in one or two packs and a
run of part of a suite needs part of the packs. A pack closes once its frames reach
:data:`PACK_TARGET_BYTES`: big enough that a clone fetches one object per several MiB,
small enough that re-recording a few values never touches the big packs.

Packing is deterministic. A frame already compressed with the pack's dictionary is
copied unchanged (castore's own settings made it, from castore.json, the same on every
machine); any other frame is recompressed from its verified value. A store without a
dictionary gets one trained at its first pack, on a deterministic sample of its values,
with an id derived from that sample, so two machines packing the same store write the
same dictionary and byte-identical packs. New recordings land loose and go into a new
pack the next time: packs are never appended to.

Packs age in generations, so that re-recording part of a store re-uploads about what was
re-recorded. Young packs (what one session recorded) are small; once more than
:data:`MAX_SMALL_PACKS` of them exist, packing merges their live blobs into full-size
packs, as ``git repack --geometric`` does. gc rewrites a pack only when more than
``max_unused`` of its bytes (half, by default) belong to blobs nothing references: below
that, rewriting costs more upload (and, in git-lfs, more storage: the old pack stays in
history) than the dead bytes it would drop. Each byte gc rewrites is matched by at least
as many dead bytes, each of which was uploaded once when it was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import blake3
import zstandard

from castore._storage.blobs.packed import PackedBlobs
from castore._storage.blobs.packfile import PackIndex, build_pack
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.frames import Compressor
from castore._storage.index_folder import IndexFiles
from castore._storage.layout import FileKind
from castore._storage.store import Store
from castore._upkeep.dictionary_training import FIRST_USER_ID, LAST_ID, install_dictionary
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress

#: A pack closes once its frames reach this many bytes (measured in docs/packs.md).
PACK_TARGET_BYTES: Final = 8 * 2**20
#: zstd level for frames packing recompresses (those not yet compressed with the store's
#: dictionary, which is every value at a store's first pack). With the dictionary, level
#: 12 is within 6% of level 19's size on the corpus and four times faster, which keeps a
#: first pack of 150,000 values near a minute (docs/benchmarks.md#packs). Frames already
#: compressed with the dictionary, such as new recordings at the store's own level, are
#: copied unchanged.
PACK_LEVEL: Final = 12
#: Share of a pack's bytes that may be dead before gc rewrites it (see the docstring).
DEFAULT_MAX_UNUSED: Final = 0.50
#: A pack under this share of the target size is young (one session's recordings, or
#: what is left of a rewrite); more than MAX_SMALL_PACKS of them are merged.
SMALL_PACK_SHARE: Final = 0.5
MAX_SMALL_PACKS: Final = 8
#: Dictionary trained at the first pack: size, and how many sample bytes it reads.
PACK_DICTIONARY_SIZE: Final = 110 * 1024
TRAINING_SAMPLE_BYTES: Final = 32 * 2**20
MIN_TRAINING_SAMPLES: Final = 16


@dataclass
class Packing:
    """What ``castore pack`` (or gc's rewrite) did."""

    written: list[PackIndex] = field(default_factory=list)
    removed_packs: list[str] = field(default_factory=list)
    blobs_packed: int = 0
    loose_removed: int = 0
    loose_bytes: int = 0
    """Bytes of the loose files that went into packs."""
    dictionary: int | None = None
    """The id of a dictionary trained by this run, if one was."""
    merged: list[str] = field(default_factory=list)
    """Young packs whose live blobs were merged into full-size packs."""

    @property
    def pack_bytes(self) -> int:
        return sum(index.size for index in self.written)


def live_order(indexes: IndexFiles) -> list[str]:
    """Every referenced blob once, in namespace-then-key order: the packing order."""
    seen: dict[str, None] = {}
    for namespace in indexes.namespaces():
        for _, entry in sorted(indexes.cached(namespace).items()):
            seen.setdefault(entry.blob, None)
    return list(seen)


def loose_values(parts: UpkeepParts) -> list[str]:
    """Digests of the loose blobs that are values (not dictionaries): what packing moves.
    A listing of ``blobs/``, no index read: an empty one means nothing to pack."""
    dictionaries = set(parts.config.current.dictionaries.values())
    return [blob.name for blob in parts.blobs.loose.walk() if blob.name not in dictionaries]


def small_packs(blobs: StoredBlobs, target_bytes: int) -> list[str]:
    """Young packs, by the size of their files (a listing, no ``.idx`` read)."""
    indexed = set(blobs.packs.names())
    return [
        info.name
        for info in blobs.files.listing(FileKind.PACK)
        if info.name in indexed and info.size < SMALL_PACK_SHARE * target_bytes
    ]


def pack_store(
    store: Store,
    *,
    repack: bool = False,
    target_bytes: int = PACK_TARGET_BYTES,
    progress: Progress = no_progress,
) -> Packing:
    """Move every referenced loose blob into new packs (``repack``: rewrite all packs),
    then merge young packs once there are too many.

    ``target_bytes`` is where a pack closes; packs are deterministic for a given target,
    so machines that share a store should keep the default."""
    parts = UpkeepParts.of(store)
    with parts.writer.lock():
        store.refresh()
        return pack_parts(parts, repack=repack, target_bytes=target_bytes, progress=progress)


def pack_if_due(store: Store, *, after_blobs: int, after_bytes: int) -> Packing | None:
    """Pack the loose blobs if they pass either threshold (the automatic packing after a
    session that recorded); None when they do not. A listing of ``blobs/`` decides."""
    parts = UpkeepParts.of(store)
    dictionaries = set(parts.config.current.dictionaries.values())
    loose = [info for info in parts.blobs.loose.walk() if info.name not in dictionaries]
    if len(loose) < after_blobs and sum(info.size for info in loose) < after_bytes:
        return None
    with parts.writer.lock():
        store.refresh()
        return pack_parts(parts, repack=False, target_bytes=PACK_TARGET_BYTES, progress=no_progress)


def pack_parts(
    parts: UpkeepParts,
    *,
    repack: bool,
    target_bytes: int,
    progress: Progress,
    merge_young: bool = True,
) -> Packing:
    """:func:`pack_store` under the store lock, for callers that hold it; without
    ``merge_young``, only loose blobs are packed and no pack is rewritten."""
    report = Packing()
    packs = parts.blobs.packs
    loose = loose_values(parts)
    young = small_packs(parts.blobs, target_bytes) if merge_young else []
    merge = len(young) > MAX_SMALL_PACKS
    if not loose and not repack and not merge:
        return report  # nothing to do, known from two listings, no index read
    order = live_order(parts.indexes)
    dictionaries = set(parts.config.current.dictionaries.values())
    order = [blob for blob in order if blob not in dictionaries]  # they stay loose
    if repack:
        chosen = order
    else:
        unpacked = {blob for blob in loose if packs.pack_of(blob) is None}
        merging = set(young) if merge else set()
        chosen = [
            blob
            for blob in order
            if blob in unpacked or (merging and packs.pack_of(blob) in merging)
        ]
        if merge:
            report.merged = sorted(merging)
    chosen = [blob for blob in chosen if parts.blobs.exists(blob)]
    if not chosen and not report.merged:
        return report
    if parts.config.current.dictionary is None:
        sizes = {
            entry.blob: entry.size
            for namespace in parts.indexes.namespaces()
            for entry in parts.indexes.cached(namespace).values()
        }
        report.dictionary = _train_dictionary(parts, order, sizes, progress)
    old_packs = packs.names() if repack else report.merged
    loose_sizes = {blob.digest: blob.size for blob in parts.blobs.walk_loose()}
    _write_packs(parts, chosen, report, progress=progress, target_bytes=target_bytes)
    written = {index.name for index in report.written}
    for name in old_packs:
        if name not in written:
            packs.remove_pack(name)
            report.removed_packs.append(name)
    for blob in chosen:
        if blob in loose_sizes:
            parts.blobs.delete(blob)  # removes the loose copy; the packed one stays
            report.loose_removed += 1
            report.loose_bytes += loose_sizes[blob]
    parts.writer.save_config(parts.config.current.packed())
    return report


def sparse_packs(packs: PackedBlobs, live: set[str], max_unused: float) -> list[str]:
    """The packs whose dead share passes ``max_unused``."""
    sparse = []
    for name, index in packs.indexes().items():
        total = sum(slot.length for slot in index.slots.values())
        dead = sum(slot.length for blob, slot in index.slots.items() if blob not in live)
        if total and dead / total > max_unused:
            sparse.append(name)
    return sparse


def rewrite_sparse_packs(
    parts: UpkeepParts, live: set[str], *, max_unused: float, dry_run: bool = False
) -> Packing:
    """Rewrite the packs whose dead share passes ``max_unused``; call under the lock."""
    packs = parts.blobs.packs
    report = Packing()
    sparse = sparse_packs(packs, live, max_unused)
    if not sparse or dry_run:
        report.removed_packs = sparse
        return report
    indexes = packs.indexes()
    # A live blob of a sparse pack that a dense pack also holds stays where it is.
    in_dense = {
        blob for name, index in indexes.items() if name not in sparse for blob in index.slots
    }
    keep = {
        blob
        for name in sparse
        for blob in indexes[name].slots
        if blob in live and blob not in in_dense
    }
    order = [blob for blob in live_order(parts.indexes) if blob in keep]
    _write_packs(parts, order, report, progress=no_progress, target_bytes=PACK_TARGET_BYTES)
    written = {index.name for index in report.written}
    for name in sparse:
        if name not in written:
            packs.remove_pack(name)
            report.removed_packs.append(name)
    return report


def _write_packs(
    parts: UpkeepParts,
    order: list[str],
    report: Packing,
    *,
    progress: Progress,
    target_bytes: int,
) -> None:
    """Frames of ``order`` in packs of about ``target_bytes``, written before anything
    that held them is removed. Frames that need recompressing are compressed in parallel,
    a chunk at a time (zstd compresses each value alone, so the bytes do not depend on
    the chunking or the number of threads)."""
    dictionary_id = parts.config.current.dictionary or 0
    dictionary = parts.compression.dictionary_bytes(dictionary_id) if dictionary_id else None
    compressor = Compressor(PACK_LEVEL, dictionary)
    pending: list[tuple[str, bytes | None]] = []  # (blob, frame to copy or None)
    redo: list[bytes] = []
    writer = _PackWriter(parts.blobs.packs, dictionary_id, report, target_bytes)
    for blob in progress(order, len(order), "packing"):
        frame = parts.blobs.read(blob)
        packed = parts.reader.read_packed(blob)  # verified before it goes into a pack
        if frame is None or _dictionary_of(frame) != dictionary_id:
            frame = None
            redo.append(packed)
        pending.append((blob, frame))
        if len(pending) >= _CHUNK:
            writer.add(pending, compressor.compress_many(redo))
            pending, redo = [], []
    writer.add(pending, compressor.compress_many(redo))
    writer.close()


class _PackWriter:
    """Collects frames in order and writes a pack each time they reach the target size."""

    def __init__(
        self, packs: PackedBlobs, dictionary_id: int, report: Packing, target_bytes: int
    ) -> None:
        self.packs, self.dictionary_id, self.report = packs, dictionary_id, report
        self.target_bytes = target_bytes
        self.batch: list[tuple[str, bytes]] = []
        self.size = 0
        self.present = set(packs.names())

    def add(self, pending: list[tuple[str, bytes | None]], recompressed: list[bytes]) -> None:
        fresh = iter(recompressed)
        for blob, kept in pending:
            frame = kept if kept is not None else next(fresh)
            self.batch.append((blob, frame))
            self.size += len(frame)
            if self.size >= self.target_bytes:
                self.close()

    def close(self) -> None:
        if self.batch:
            data, index = build_pack(self.batch, self.dictionary_id)
            if index.name not in self.present:
                self.packs.add_pack(data, index)
                self.present.add(index.name)
            self.report.written.append(index)
            self.report.blobs_packed += len(index.slots)
        self.batch, self.size = [], 0


#: Blobs read and compressed at a time: enough to keep every core busy.
_CHUNK: Final = 2048


def _dictionary_of(frame: bytes) -> int:
    try:
        return int(zstandard.get_frame_parameters(frame).dict_id)
    except zstandard.ZstdError:
        return -1


def _train_dictionary(
    parts: UpkeepParts, order: list[str], sizes: dict[str, int], progress: Progress
) -> int | None:
    """Train the store's first dictionary on an evenly spaced sample of its values (every
    n-th, so that at most TRAINING_SAMPLE_BYTES are read); the sample, and so the
    dictionary and its id, depend only on the store's content."""
    total = sum(sizes.get(blob, 0) for blob in order)
    stride = max(1, -(-total // TRAINING_SAMPLE_BYTES))
    chosen = order[::stride]
    if len(chosen) < MIN_TRAINING_SAMPLES:
        return None
    samples = [parts.reader.read_packed(blob) for blob in progress(chosen, len(chosen), "sampling")]
    fingerprint = blake3.blake3(b"".join(bytes.fromhex(blob) for blob in chosen))
    dictionary_id = FIRST_USER_ID + int.from_bytes(fingerprint.digest()[:4], "big") % (
        LAST_ID - FIRST_USER_ID
    )
    config = parts.config.current
    while dictionary_id in config.dictionaries:
        dictionary_id += 1
    install_dictionary(
        parts.writer,
        config,
        samples,
        size=PACK_DICTIONARY_SIZE,
        dictionary_id=dictionary_id,
        level=config.level,
    )
    return dictionary_id
