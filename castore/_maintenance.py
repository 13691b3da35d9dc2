"""Keeping a store healthy: statistics, verification, garbage collection and pruning.

Each function returns plain data for the CLI to print; nothing here formats or exits.
``verify``, ``gc`` and ``prune`` hold the store lock, so they see a consistent store and
no writer can add a reference to a blob while gc decides it is unreferenced.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from castore._atomic import is_temp_file
from castore._blobs import BlobFile
from castore._config import CONFIG_NAME
from castore._store import INDEX_DIR, Store
from castore._usage import last_run_path, load_judgements, save_judgements
from castore.errors import (
    CorruptBlobError,
    IndexFormatError,
    LfsPointerError,
    MissingBlobError,
    UnsupportedFormatError,
    ValueTooLargeError,
)

T = TypeVar("T")
#: Wraps a long loop, e.g. with a progress bar: (items, how many, label) -> items.
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def no_progress(items: Iterable[T], total: int, label: str) -> Iterable[T]:
    return items


def references(store: Store) -> dict[str, list[tuple[str, str]]]:
    """blob digest -> every (namespace, key) whose entry points at it, plus dictionaries.

    Raises IndexFormatError on a malformed index: nobody may delete blobs on the word of
    an index that cannot be read.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for namespace in store.namespaces():
        for key, entry in store.entries(namespace).items():
            found.setdefault(entry.blob, []).append((namespace, key))
    for dictionary_id, blob in store.config.dictionaries.items():
        found.setdefault(blob, []).append((CONFIG_NAME, f"dictionary {dictionary_id}"))
    return found


def _disk_bytes(paths: Iterable[Path]) -> int:
    return sum(path.stat().st_size for path in paths if path.is_file())


def index_files(store: Store) -> list[Path]:
    return [store.index_path(namespace) for namespace in store.namespaces()]


# --- stats -------------------------------------------------------------------------


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
    blob_files = list(store.blobs())
    dictionaries = set(store.config.dictionaries.values())
    orphans = [b for b in blob_files if b.digest not in sizes and b.digest not in dictionaries]
    uncompressed = sum(sizes[blob.digest] for blob in blob_files if blob.digest in sizes)
    blob_bytes = sum(blob.size for blob in blob_files)
    index_bytes = _disk_bytes(index_files(store))
    config_bytes = _disk_bytes([store.root / CONFIG_NAME])
    everything.sort(key=lambda item: (-item[0], item[1], item[2]))
    return StoreStats(
        namespaces=len(namespaces),
        entries=entries,
        blobs=len(blob_files),
        bytes=blob_bytes + index_bytes + config_bytes,
        blob_bytes=blob_bytes,
        index_bytes=index_bytes,
        uncompressed_bytes=uncompressed,
        logical_bytes=logical,
        orphans=len(orphans),
        largest=[
            {"namespace": ns, "key": key, "size": size, "blob": blob}
            for size, ns, key, blob in everything[:top]
        ],
    )


# --- verify ------------------------------------------------------------------------


FAULT_KINDS = ("index", "corrupt", "lfs-pointer", "missing", "orphan", "stray")


@dataclass(frozen=True)
class Fault:
    kind: str
    """One of FAULT_KINDS."""
    path: Path
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": str(self.path), "detail": self.detail}


@dataclass
class Verification:
    blobs_total: int = 0
    blobs_checked: int = 0
    entries: int = 0
    faults: list[Fault] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)


def _sample(blobs: list[BlobFile], sample: float | None) -> list[BlobFile]:
    if sample is None or not blobs:
        return blobs
    count = round(sample * len(blobs)) if sample <= 1 else int(sample)
    count = min(len(blobs), max(1, count))
    return sorted(random.sample(blobs, count), key=lambda blob: blob.digest)


def _users(refs: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"{ns} :: {key}" for ns, key in refs[:3])
    return shown + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")


def verify(
    store: Store,
    *,
    sample: float | None = None,
    quarantine: bool = False,
    progress: Progress = no_progress,
) -> Verification:
    """Check every index, every reference, and the content of every (or a sample of) blob.

    ``sample`` below 1 is a fraction of the blobs, from 1 a number of blobs; indexes,
    references and orphans are always checked in full (they cost no decompression).
    ``quarantine`` moves corrupt blobs to ``.castore/quarantine/`` instead of leaving them.
    """
    result = Verification()
    with store.lock():
        store.refresh()
        refs: dict[str, list[tuple[str, str]]] = {}
        sizes: dict[str, int] = {}
        for namespace in store.namespaces():
            try:
                entries = store.entries(namespace)
            except (IndexFormatError, UnsupportedFormatError) as error:
                result.faults.append(Fault("index", store.index_path(namespace), str(error)))
                continue
            for key, entry in entries.items():
                result.entries += 1
                refs.setdefault(entry.blob, []).append((namespace, key))
                sizes[entry.blob] = entry.size
        for dictionary_id, dictionary_blob in store.config.dictionaries.items():
            refs.setdefault(dictionary_blob, []).append(
                (CONFIG_NAME, f"dictionary {dictionary_id}")
            )
        blob_files = list(store.blobs())
        result.blobs_total = len(blob_files)
        present = {blob.digest for blob in blob_files}
        for digest, users in sorted(refs.items()):
            if digest not in present:
                detail = f"referenced by {_users(users)}; restore it from git or re-record"
                result.faults.append(Fault("missing", store.blob_path(digest), detail))
        for blob in blob_files:
            if blob.digest not in refs:
                detail = "no index refers to it; `castore gc` removes it"
                result.faults.append(Fault("orphan", blob.path, detail))
        for stray in store.stray_files():
            if is_temp_file(stray.path):
                detail = "temporary file of an interrupted write; `castore gc` removes it"
            else:
                detail = "not a blob (wrong name or place); move or delete it"
            result.faults.append(Fault("stray", stray.path, detail))
        to_check = _sample(blob_files, sample)
        for blob in progress(to_check, len(to_check), "checking blobs"):
            fault = _check_blob(store, blob, sizes.get(blob.digest), refs.get(blob.digest, []))
            result.blobs_checked += 1
            if fault is None:
                continue
            result.faults.append(fault)
            if quarantine and fault.kind == "corrupt":
                result.quarantined.append(_quarantine(store, blob.path))
    return result


def _check_blob(
    store: Store, blob: BlobFile, expected_size: int | None, users: list[tuple[str, str]]
) -> Fault | None:
    owner = _users(users)
    try:
        packed = store.read_packed(blob.digest, owner=owner, strict=True)
    except LfsPointerError:
        return Fault("lfs-pointer", blob.path, "a git-lfs pointer: run `git lfs pull`")
    except (CorruptBlobError, ValueTooLargeError) as error:
        detail = getattr(error, "detail", None) or str(error)
        return Fault("corrupt", blob.path, f"{detail}; used by {owner or 'nothing'}")
    except MissingBlobError:  # removed while we looked
        return None
    if expected_size is not None and len(packed) != expected_size:
        return Fault(
            "corrupt",
            blob.path,
            f"holds {len(packed)} bytes but its index entries say {expected_size}",
        )
    return None


def _quarantine(store: Store, path: Path) -> Path:
    folder = store.state_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    target = folder / f"{path.name}.{stamp}"
    shutil.move(path, target)
    return target


# --- gc ----------------------------------------------------------------------------


@dataclass
class Collection:
    removed: list[BlobFile] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(blob.size for blob in self.removed)


def _temp_files(store: Store) -> Iterator[Path]:
    for stray in store.stray_files():
        if is_temp_file(stray.path):
            yield stray.path
    index_root = store.root / INDEX_DIR
    if index_root.is_dir():
        yield from (path for path in index_root.rglob(".*.tmp") if path.is_file())


def collect_garbage(
    store: Store,
    *,
    dry_run: bool = False,
    dropped: Iterable[tuple[str, str]] = (),
    progress: Progress = no_progress,
) -> Collection:
    """Delete blobs no index refers to, and temporary files of interrupted writes.

    ``dropped`` lists (namespace, key) pairs to treat as already gone: what a dry-run prune
    would drop, so its gc estimate is right.
    """
    result = Collection()
    with store.lock():
        store.refresh()
        refs = references(store)
        for namespace, key in dropped:
            users = refs.get(_blob_of(store, namespace, key), [])
            if (namespace, key) in users:
                users.remove((namespace, key))
        live = {blob for blob, users in refs.items() if users}
        # Under the lock no write is in progress, so every temporary file is a leftover.
        result.temp_files = list(_temp_files(store))
        blob_files = list(store.blobs())
        for blob in progress(blob_files, len(blob_files), "collecting garbage"):
            if blob.digest not in live:
                result.removed.append(blob)
                if not dry_run:
                    store.delete_blob(blob.digest)
        if not dry_run:
            for path in result.temp_files:
                path.unlink(missing_ok=True)
    return result


def _blob_of(store: Store, namespace: str, key: str) -> str:
    entry = store.entry(namespace, key)
    return entry.blob if entry else ""


# --- prune -------------------------------------------------------------------------


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
    judgements = load_judgements(store.state_dir)
    with store.lock():
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
            save_judgements(store.state_dir, {}, remaining)
        collection = collect_garbage(store, dry_run=dry_run, dropped=dropped if dry_run else ())
    return Pruning(dropped, collection, last_run_path(store.state_dir).exists())
