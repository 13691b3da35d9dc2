"""``castore gc`` and ``castore prune``: dropping what nothing uses any more.

Both hold the store lock, so no writer can add a reference to a blob while gc decides it
is unreferenced. They return plain data for the CLI to print.

A gc that finds the store as the last complete gc left it (the same index folders, packs,
loose blobs and castore.json, by a listing and a few stats, ``gc_stamp``) has nothing to
do and reads no index: only a change since then can have made anything unreferenced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from castore._storage.atomic import is_temp_file
from castore._storage.blobs.blob_file import BlobFile
from castore._storage.blobs.cut import CutFrames
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.index_folder import IndexFiles
from castore._storage.last_run import last_run_path, load_judgements, save_judgements
from castore._storage.layout import FileKind
from castore._storage.references import references
from castore._storage.store import Store
from castore._upkeep import gc_stamp
from castore._upkeep.packing import DEFAULT_MAX_UNUSED, Packing, rewrite_sparse_packs
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress


@dataclass
class Collection:
    removed: list[BlobFile] = field(default_factory=list)
    """Loose blob files deleted because nothing references them."""
    packed_copies: list[BlobFile] = field(default_factory=list)
    """Loose files of referenced blobs that a pack also holds (a pack run was killed
    before it removed them)."""
    temp_files: list[Path] = field(default_factory=list)
    unpaired_packs: list[str] = field(default_factory=list)
    """Packs no ``.idx`` names (another branch's cached pack data, a killed packer's)."""
    packing: Packing = field(default_factory=Packing)
    """Packs rewritten because their dead share passed ``max_unused``."""
    dead_packed: int = 0
    """Unreferenced blobs left inside packs still under the threshold."""
    unchanged: bool = False
    """The store was as the last gc left it: nothing was looked at, nothing to do."""
    cut_frames: int = 0
    """Frames cut from remote packs (local state) that no index references any more, or
    whose pack is gone."""

    @property
    def bytes(self) -> int:
        return sum(blob.size for blob in self.removed)


def _temp_files(blobs: StoredBlobs, indexes: IndexFiles) -> Iterator[Path]:
    for stray in blobs.strays():
        if is_temp_file(stray.path):
            yield stray.path
    yield from indexes.temp_files()


def collect_garbage(
    store: Store,
    *,
    dry_run: bool = False,
    dropped: Iterable[tuple[str, str]] = (),
    max_unused: float = DEFAULT_MAX_UNUSED,
    progress: Progress = no_progress,
) -> Collection:
    """Delete loose blobs no index refers to, rewrite the packs whose dead share passes
    ``max_unused``, and remove temporary files of interrupted writes.

    ``dropped`` lists (namespace, key) pairs to treat as already gone: what a dry-run prune
    would drop, so its gc estimate is right.
    """
    parts = UpkeepParts.of(store)
    dropped = list(dropped)
    result = Collection()
    writer, blobs, indexes = parts.writer, parts.blobs, parts.indexes
    with writer.lock_for_reading() if dry_run else writer.lock():
        store.refresh()
        stamp = gc_stamp.take(indexes, blobs, parts.config)
        if not dropped and gc_stamp.unchanged(writer.state_dir, stamp, max_unused):
            result.unchanged = True
            return result
        refs = references(indexes, parts.config.current)
        for namespace, key in dropped:
            users = refs.get(_blob_of(store, namespace, key), [])
            if (namespace, key) in users:
                users.remove((namespace, key))
        live = {blob for blob, users in refs.items() if users}
        # Under the lock no write is in progress, so every temporary file is a leftover.
        result.temp_files = list(_temp_files(blobs, indexes))
        packs = blobs.packs
        result.packing = rewrite_sparse_packs(parts, live, max_unused=max_unused, dry_run=dry_run)
        # Listed after the rewrite: packs are named by their content, so a rewrite killed
        # between a pack and its .idx left the very pack this one has just paired.
        result.unpaired_packs = blobs.unpaired_packs()
        rewritten = set(result.packing.removed_packs)
        result.dead_packed = sum(
            1
            for name, index in packs.indexes().items()
            if name not in rewritten
            for blob in index.slots
            if blob not in live
        )
        loose = list(blobs.walk_loose())
        for blob in progress(loose, len(loose), "collecting garbage"):
            if blob.digest not in live:
                result.removed.append(blob)
            elif packs.pack_of(blob.digest) is not None:
                result.packed_copies.append(blob)
            else:
                continue
            if not dry_run:
                blobs.delete(blob.digest)
        if blobs.cut is not None:
            result.cut_frames = _collect_cut_frames(blobs.cut, live, packs.names(), dry_run)
        if not dry_run:
            for name in result.unpaired_packs:
                blobs.files.delete(FileKind.PACK, name)
            for path in result.temp_files:
                if path.is_relative_to(indexes.root):
                    path.unlink(missing_ok=True)
                else:
                    blobs.remove_stray(path)
            gc_stamp.save(writer.state_dir, gc_stamp.take(indexes, blobs, parts.config), max_unused)
    return result


def _collect_cut_frames(cut: CutFrames, live: set[str], packs: list[str], dry_run: bool) -> int:
    """Drop the frames cut from remote packs that no index references any more, or whose
    pack is gone; returns how many (would) go."""
    held = set(packs)
    stale = [(pack, blob) for pack, blob in cut.walk() if blob not in live or pack not in held]
    if not dry_run:
        for pack, blob in stale:
            cut.drop(pack, blob)
    return len(stale)


def _blob_of(store: Store, namespace: str, key: str) -> str:
    entry = store.entry(namespace, key)
    return entry.blob if entry else ""


@dataclass
class Pruning:
    dropped: list[tuple[str, str]]
    collection: Collection
    ever_judged: bool
    """False when no test run has saved a verdict for this store yet."""


def prune(store: Store, *, dry_run: bool = False) -> Pruning:
    """Drop the entries the last complete test run did not use, then collect garbage.

    Only entries recorded before the run that judged them are dropped: anything recorded
    since is kept, whatever the saved verdict says.
    """
    writer = UpkeepParts.of(store).writer
    judgements = load_judgements(writer.state_dir)
    with writer.lock_for_reading() if dry_run else writer.lock():
        store.refresh()
        dropped = []
        for namespace, judgement in sorted(judgements.items()):
            for key in sorted(judgement.unused):
                entry = store.entry(namespace, key)
                if entry is not None and entry.recorded_at < judgement.judged_at:
                    dropped.append((namespace, key))
        if not dry_run:
            with store.batch():
                for namespace, key in dropped:
                    store.delete(namespace, key)
            remaining = {ns: {k for n, k in dropped if n == ns} for ns in judgements}
            save_judgements(writer.state_dir, {}, remaining)
        collection = collect_garbage(store, dry_run=dry_run, dropped=dropped if dry_run else ())
    return Pruning(dropped, collection, last_run_path(writer.state_dir).exists())
