"""``castore pack``, and the pack rewriting ``castore gc`` does: loose blobs into packs.

Blobs are packed in the order of the namespaces that reference them (namespaces sorted,
keys sorted within each), so a test module's recordings sit in one or two packs and a
run of part of a suite needs part of the packs. A pack closes once its frames reach
:data:`PACK_TARGET_BYTES`: big enough that a clone fetches one LFS object per several
MiB, small enough that re-recording a few values never touches the big packs.

Packing is deterministic. A frame already compressed with the pack's dictionary is
copied unchanged (castore's own settings made it, from castore.json, the same on every
machine); any other frame is recompressed from its verified value. A store without a
dictionary gets one trained at its first pack, on a deterministic sample of its values,
with an id derived from that sample, so two machines packing the same store write the
same dictionary and byte-identical packs. New recordings land loose and go into a new,
small pack the next time: packs are never appended to.

gc drops dead blobs from packs as ``restic prune --max-unused`` does: a pack is
rewritten only when more than ``max_unused`` of its bytes (10% by default) belong to
blobs nothing references, so deleting one recording does not re-upload a 8 MiB pack.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import blake3
import zstandard

from castore._storage.blobs.backend import BlobFile
from castore._storage.blobs.packed import PackedBlobs
from castore._storage.blobs.packfile import PackIndex, build_pack
from castore._storage.blobs.wrappers import LayeredBlobs
from castore._storage.core import StoreCore
from castore._storage.frames import Compressor
from castore._storage.store import Store, internals
from castore._upkeep.progress import Progress, no_progress
from castore._upkeep.zstd_dictionaries import FIRST_USER_ID, LAST_ID, install_dictionary
from castore.errors import StoreError

#: A pack closes once its frames reach this many bytes (measured in docs/packs.md).
PACK_TARGET_BYTES: Final = 8 * 2**20
#: zstd level for frames packing recompresses (those not yet compressed with the store's
#: dictionary, which is every value at a store's first pack). With the dictionary, level
#: 12 is within 6% of level 19's size on the corpus and four times faster, which keeps a
#: first pack of 150,000 values near a minute (docs/benchmarks.md#packs). Frames already
#: compressed with the dictionary, such as new recordings at the store's own level, are
#: copied unchanged.
PACK_LEVEL: Final = 12
#: Share of a pack's bytes that may be dead before gc rewrites it.
DEFAULT_MAX_UNUSED: Final = 0.10
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

    @property
    def pack_bytes(self) -> int:
        return sum(index.size for index in self.written)


def packs_of(store: Store) -> PackedBlobs:
    packs = internals(store).packs
    if packs is None:  # pragma: no cover - only stores built on a custom backend
        raise StoreError("this store has no pack directory (it was opened on a custom backend)")
    return packs


def live_order(store: Store) -> list[str]:
    """Every referenced blob once, in namespace-then-key order: the packing order."""
    seen: dict[str, None] = {}
    for namespace in store.namespaces():
        for _, entry in sorted(store.entries(namespace).items()):
            seen.setdefault(entry.blob, None)
    return list(seen)


def pack_store(
    store: Store,
    *,
    repack: bool = False,
    target_bytes: int = PACK_TARGET_BYTES,
    progress: Progress = no_progress,
) -> Packing:
    """Move every referenced loose blob into new packs (``repack``: rewrite all packs).

    ``target_bytes`` is where a pack closes; packs are deterministic for a given target,
    so machines that share a store should keep the default."""
    core = internals(store)
    packs = packs_of(store)
    report = Packing()
    with core.lock():
        store.refresh()
        order = live_order(store)
        dictionaries = set(core.config.dictionaries.values())
        order = [blob for blob in order if blob not in dictionaries]  # they stay loose
        chosen = order if repack else [blob for blob in order if packs.pack_of(blob) is None]
        chosen = [blob for blob in chosen if core.backend.exists(blob)]
        if not chosen:
            return report
        if core.config.dictionary is None:
            sizes = {
                entry.blob: entry.size
                for namespace in store.namespaces()
                for entry in store.entries(namespace).values()
            }
            report.dictionary = _train_dictionary(core, order, sizes, progress)
        old_packs = list(packs.indexes()) if repack else []
        loose_sizes = {blob.digest: blob.size for blob in loose_files(core)}
        _write_packs(core, packs, chosen, report, progress=progress, target_bytes=target_bytes)
        for name in old_packs:
            if name not in {index.name for index in report.written}:
                packs.remove_pack(name)
                report.removed_packs.append(name)
        for blob in chosen:
            if blob in loose_sizes:
                core.backend.delete(blob)  # the layered delete removes the loose copy
                report.loose_removed += 1
                report.loose_bytes += loose_sizes[blob]
        core.save_config(core.config.packed())
    return report


def rewrite_sparse_packs(
    store: Store, live: set[str], *, max_unused: float, dry_run: bool = False
) -> Packing:
    """Rewrite the packs whose dead share passes ``max_unused``; call under the lock."""
    core = internals(store)
    packs = packs_of(store)
    report = Packing()
    sparse: list[str] = []
    for name, index in packs.indexes().items():
        total = sum(slot.length for slot in index.slots.values())
        dead = sum(slot.length for blob, slot in index.slots.items() if blob not in live)
        if total and dead / total > max_unused:
            sparse.append(name)
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
    order = [blob for blob in live_order(store) if blob in keep]
    _write_packs(core, packs, order, report, progress=no_progress, target_bytes=PACK_TARGET_BYTES)
    written = {index.name for index in report.written}
    for name in sparse:
        if name not in written:
            packs.remove_pack(name)
            report.removed_packs.append(name)
    return report


def loose_files(core: StoreCore) -> Iterable[BlobFile]:
    """The loose blob files alone (packed blobs are listed by their packs)."""
    backend = core.backend
    return backend.loose.walk() if isinstance(backend, LayeredBlobs) else []


def _write_packs(
    core: StoreCore,
    packs: PackedBlobs,
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
    dictionary_id = core.config.dictionary or 0
    dictionary = core.dictionary_bytes(dictionary_id) if dictionary_id else None
    compressor = Compressor(PACK_LEVEL, dictionary)
    pending: list[tuple[str, bytes | None]] = []  # (blob, frame to copy or None)
    redo: list[bytes] = []
    writer = _PackWriter(packs, dictionary_id, report, target_bytes)
    for blob in progress(order, len(order), "packing"):
        frame = core.backend.read(blob)
        packed = core.blobs.read_packed(blob)  # verified before it goes into a pack
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
            _flush(self.packs, self.batch, self.dictionary_id, self.report)
        self.batch, self.size = [], 0


#: Blobs read and compressed at a time: enough to keep every core busy.
_CHUNK: Final = 2048


def _flush(
    packs: PackedBlobs, batch: list[tuple[str, bytes]], dictionary_id: int, report: Packing
) -> None:
    data, index = build_pack(batch, dictionary_id)
    if index.name not in packs.indexes():
        packs.add_pack(data, index)
    report.written.append(index)
    report.blobs_packed += len(index.slots)


def _dictionary_of(frame: bytes) -> int:
    try:
        return int(zstandard.get_frame_parameters(frame).dict_id)
    except zstandard.ZstdError:
        return -1


def _train_dictionary(
    core: StoreCore, order: list[str], sizes: dict[str, int], progress: Progress
) -> int | None:
    """Train the store's first dictionary on an evenly spaced sample of its values (every
    n-th, so that at most TRAINING_SAMPLE_BYTES are read); the sample, and so the
    dictionary and its id, depend only on the store's content."""
    total = sum(sizes.get(blob, 0) for blob in order)
    stride = max(1, -(-total // TRAINING_SAMPLE_BYTES))
    chosen = order[::stride]
    if len(chosen) < MIN_TRAINING_SAMPLES:
        return None
    samples = [core.blobs.read_packed(blob) for blob in progress(chosen, len(chosen), "sampling")]
    fingerprint = blake3.blake3(b"".join(bytes.fromhex(blob) for blob in chosen))
    dictionary_id = FIRST_USER_ID + int.from_bytes(fingerprint.digest()[:4], "big") % (
        LAST_ID - FIRST_USER_ID
    )
    while dictionary_id in core.config.dictionaries:
        dictionary_id += 1
    install_dictionary(
        core,
        samples,
        size=PACK_DICTIONARY_SIZE,
        dictionary_id=dictionary_id,
        level=core.config.level,
    )
    return dictionary_id
