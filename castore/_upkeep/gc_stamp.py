"""What a store looked like when the last complete ``castore gc`` finished, so that the
next one can tell, from a listing and a few stats, that nothing changed since.

Only a change can make a blob unreferenced: a re-recording or a deletion rewrites an
index (castore writes by renaming, which changes the folder's time), a checkout replaces
files, a recording adds a loose blob. So equal stamps mean gc has nothing to do, and it
returns without reading the store's indexes (59,700 of them at 100x the benchmark).
Skipping is always safe: a gc that does nothing deletes nothing.

Folder times have a coarse grain on some file systems (a few ms), so a change made just
after a stamp could leave a folder's time as it was. As git does for its index ("racy
git"), a stamp is trusted only when every time in it is older than the moment it was
taken by more than :data:`RACY_NS`; a gc that itself changed the store saves a stamp the
next gc will not trust, and the one after that takes the shortcut.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import blake3

from castore._storage.atomic import ensure_private_directory, write_atomic
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.config import ConfigFile
from castore._storage.index_folder import IndexFiles
from castore._storage.json_documents import parse_document
from castore._storage.layout import GC_STAMP_NAME, FileKind
from castore._storage.safe_files import FileRefused, read_store_file
from castore.errors import CastoreError

_MAX_STAMP_BYTES: Final = 4096
#: Folder times this close to the moment a stamp is taken may hide a later change.
RACY_NS: Final = 100_000_000


@dataclass(frozen=True)
class Stamp:
    digest: str
    newest_ns: int
    """The newest folder time in it."""


def take(indexes: IndexFiles, blobs: StoredBlobs, config: ConfigFile) -> Stamp:
    """The store's stamp now: a digest of its folders' times, its pack and loose blob
    listings and castore.json's size and time."""
    hasher = blake3.blake3()
    folder = blobs.folder()
    times = dict(indexes.folder_times())
    if folder is not None:
        times.update(folder.folder_times())
    for path, mtime in sorted(times.items()):
        hasher.update(f"{path} {mtime}\n".encode())
    for kind in (FileKind.PACK, FileKind.PACK_INDEX, FileKind.BLOB):
        for info in blobs.files.listing(kind):
            hasher.update(f"{kind} {info.name} {info.size} {info.mtime}\n".encode())
    try:
        status = config.path.stat()
        hasher.update(f"config {status.st_size} {status.st_mtime_ns}\n".encode())
    except OSError:
        hasher.update(b"no config\n")
    return Stamp(hasher.hexdigest(), max(times.values(), default=0))


def unchanged(state_dir: Path, now: Stamp, max_unused: float) -> bool:
    """Whether the last complete gc with this threshold left the store as it is now, by
    a stamp that can be trusted."""
    return last(state_dir, max_unused) == now.digest


def last(state_dir: Path, max_unused: float) -> str | None:
    """The trusted stamp the last complete gc with this threshold saved, if any."""
    path = state_dir / GC_STAMP_NAME
    try:
        raw = read_store_file(path, _MAX_STAMP_BYTES)
        if raw is None:
            return None
        document: Any = parse_document(raw, path)
    except (FileRefused, CastoreError):
        return None
    if not isinstance(document, dict) or document.get("max_unused") != max_unused:
        return None
    stamp, newest, taken = (document.get(field) for field in ("stamp", "newest", "taken"))
    if not (isinstance(newest, int) and isinstance(taken, int) and newest < taken - RACY_NS):
        return None
    return stamp if isinstance(stamp, str) else None


def save(state_dir: Path, stamp: Stamp, max_unused: float) -> None:
    """Remember the stamp after a complete gc (best effort: a read-only state folder
    only costs the next gc its shortcut)."""
    try:
        ensure_private_directory(state_dir)
        document = {
            "castore_gc_stamp": 1,
            "max_unused": max_unused,
            "stamp": stamp.digest,
            "newest": stamp.newest_ns,
            "taken": time.time_ns(),
        }
        write_atomic(state_dir / GC_STAMP_NAME, (json.dumps(document) + "\n").encode())
    except CastoreError:
        return
