"""``castore verify``: every index, every reference, and the content of every blob.

It holds the store lock, so it sees a consistent store. It returns plain data for the CLI
to print; nothing here formats or exits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from castore._storage.atomic import is_temp_file
from castore._storage.blobs.blob_file import BlobFile
from castore._storage.blobs.packed import PackedBlobs
from castore._storage.blobs.packfile import PackIndex
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.layout import CONFIG_NAME, PACK_SUFFIX, QUARANTINE_DIR
from castore._storage.store import Store
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress
from castore.errors import (
    CorruptBlobError,
    IndexFormatError,
    LfsPointerError,
    MissingBlobError,
    UnsupportedFormatError,
    ValueTooLargeError,
)


class FaultKind(StrEnum):
    INDEX = "index"
    CORRUPT = "corrupt"
    LFS_POINTER = "lfs-pointer"
    MISSING = "missing"
    ORPHAN = "orphan"
    STRAY = "stray"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
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
    upkeep: list[Fault] = field(default_factory=list)
    """What ``castore gc`` collects rather than a fault: orphan blobs (re-recording and
    ``castore delete`` leave them) and temporary files of interrupted writes."""
    packs: int = 0
    packed_unreferenced: int = 0
    """Blobs no index refers to that sit inside packs: not faults, gc's rewrite drops them
    once their pack passes its unused threshold."""


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
    parts = UpkeepParts.of(store)
    writer, blobs = parts.writer, parts.blobs
    with writer.lock() if quarantine else writer.lock_for_reading():
        store.refresh()
        refs, sizes = _references(store, parts, result)
        blob_files = list(blobs.walk())
        result.blobs_total = len(blob_files)
        # With an index unreadable, who uses which blob is unknown: no blob is called an
        # orphan on that evidence (gc refuses to run then, for the same reason).
        every_index_read = not any(fault.kind is FaultKind.INDEX for fault in result.faults)
        result.faults += _reference_faults(blobs, refs, blob_files, orphans=every_index_read)
        result.packed_unreferenced = sum(
            1 for blob in blob_files if blob.digest not in refs and _is_packed(blob)
        )
        result.faults += _stray_faults(blobs)
        result.faults += [
            Fault(
                FaultKind.STRAY,
                blobs.packs.pack_path(name),
                "a pack no .idx names (another branch's, or a killed packer's); "
                "`castore gc` removes it",
            )
            for name in blobs.unpaired_packs()
        ]
        result.faults += _pack_faults(blobs.packs, result)
        result.upkeep = [fault for fault in result.faults if _is_upkeep(fault)]
        result.faults = [fault for fault in result.faults if not _is_upkeep(fault)]
        to_check = _sample(blob_files, sample)
        for blob in progress(to_check, len(to_check), "checking blobs"):
            fault = _check_blob(
                parts.reader, blob, sizes.get(blob.digest), refs.get(blob.digest, [])
            )
            result.blobs_checked += 1
            if fault is None:
                continue
            result.faults.append(fault)
            if quarantine and fault.kind is FaultKind.CORRUPT:
                quarantine_dir = writer.state_dir / QUARANTINE_DIR
                result.quarantined.append(blobs.quarantine(blob.digest, quarantine_dir))
    return result


References = dict[str, list[tuple[str, str]]]


def _references(
    store: Store, parts: UpkeepParts, result: Verification
) -> tuple[References, dict[str, int]]:
    """Who uses each blob, and the size its entries record; unreadable indexes are faults."""
    refs: References = {}
    sizes: dict[str, int] = {}
    for namespace in store.namespaces():
        try:
            entries = store.entries(namespace)
        except (IndexFormatError, UnsupportedFormatError) as error:
            path = parts.indexes.path(namespace)
            result.faults.append(Fault(FaultKind.INDEX, path, str(error)))
            continue
        for key, entry in entries.items():
            result.entries += 1
            refs.setdefault(entry.blob, []).append((namespace, key))
            sizes[entry.blob] = entry.size
    for dictionary_id, dictionary_blob in parts.config.current.dictionaries.items():
        refs.setdefault(dictionary_blob, []).append((CONFIG_NAME, f"dictionary {dictionary_id}"))
    return refs, sizes


def _reference_faults(
    blobs: StoredBlobs, refs: References, blob_files: list[BlobFile], *, orphans: bool
) -> list[Fault]:
    """Blobs referenced but absent, and blobs present but referenced by nothing."""
    present = {blob.digest for blob in blob_files}
    faults = [
        Fault(
            FaultKind.MISSING,
            blobs.location(digest),
            f"referenced by {_users(users)}; restore it from git or re-record",
        )
        for digest, users in sorted(refs.items())
        if digest not in present
    ]
    detail = "no index refers to it; `castore gc` removes it"
    if orphans:
        faults += [
            Fault(FaultKind.ORPHAN, b.path, detail)
            for b in blob_files
            if b.digest not in refs and not _is_packed(b)
        ]
    return faults


def _is_upkeep(fault: Fault) -> bool:
    return fault.kind is FaultKind.ORPHAN or (
        fault.kind is FaultKind.STRAY
        and (is_temp_file(fault.path) or fault.detail.endswith("`castore gc` removes it"))
    )


def _is_packed(blob: BlobFile) -> bool:
    return blob.path.suffix == PACK_SUFFIX


def _pack_faults(packs: PackedBlobs, result: Verification) -> list[Fault]:
    """Each pack whole: its content hashes to its name, and its index matches the table
    the pack itself carries. A damaged index is a fault even when castore could rebuild it
    from the pack to keep reading."""
    faults = []
    indexes = packs.indexes()
    result.packs = len(indexes) + len(set(packs.damaged) - set(indexes))
    for name, error in packs.damaged.items():
        rebuilt = (
            " castore reads its pack through the pack's own table meanwhile."
            if (name in packs.recovered)
            else ""
        )
        faults.append(Fault(FaultKind.INDEX, packs.index_path(name), f"{error}{rebuilt}"))
    for name, index in indexes.items():
        if name in packs.recovered:
            continue
        fault = _check_pack(packs, name, index)
        if fault is not None:
            faults.append(fault)
    return faults


def _check_pack(packs: PackedBlobs, name: str, index: PackIndex) -> Fault | None:
    problem = packs.check_pack(name, index)
    if problem is None:
        return None
    kind, path, detail = problem
    return Fault(FaultKind(kind), path, detail)


def _stray_faults(blobs: StoredBlobs) -> list[Fault]:
    faults = []
    for stray in blobs.strays():
        if is_temp_file(stray.path):
            detail = "temporary file of an interrupted write; `castore gc` removes it"
        else:
            detail = "not a blob (wrong name or place); move or delete it"
        faults.append(Fault(FaultKind.STRAY, stray.path, detail))
    return faults


def _check_blob(
    reader: VerifiedBlobs, blob: BlobFile, expected_size: int | None, users: list[tuple[str, str]]
) -> Fault | None:
    owner = _users(users)
    try:
        packed = reader.read_packed(blob.digest, strict=True)
        reader.unpack(packed, blob.digest)  # what get would refuse, verify reports
    except LfsPointerError:
        return Fault(FaultKind.LFS_POINTER, blob.path, "a git-lfs pointer: run `git lfs pull`")
    except (CorruptBlobError, ValueTooLargeError) as error:
        detail = getattr(error, "detail", None) or str(error.with_owner(owner))
        return Fault(FaultKind.CORRUPT, blob.path, f"{detail}; used by {owner or 'nothing'}")
    except MissingBlobError:  # removed while we looked
        return None
    if expected_size is not None and len(packed) != expected_size:
        return Fault(
            FaultKind.CORRUPT,
            blob.path,
            f"holds {len(packed)} bytes but its index entries say {expected_size}",
        )
    return None
