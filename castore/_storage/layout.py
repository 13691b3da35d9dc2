"""The store on disk: every file and folder name, the digest that names blobs, format versions.

::

    <root>/castore.json                    compression settings, dictionaries (config.py)
    <root>/index/<namespace>.json          one sorted JSON index per namespace (index.py)
    <root>/blobs/ab/ab…(64 hex).zst        one zstd frame per value (blobs/loose.py)
    <root>/packs/<64 hex>.pack             many frames in one file, in git-lfs (blobs/packed.py)
    <root>/packs/<64 hex>.idx              that pack's table of contents, in plain git
    <root>/.castore/                       local state, git-ignored: locks, last run, quarantine,
                                           the pack table, frames cut from remote packs

Every other module names these paths through this one, so a new kind of file is one more
line here, and ``castore git setup`` writes attributes for exactly what a store holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeGuard

from castore.errors import IndexFormatError, UnsupportedFormatError

CONFIG_NAME: Final = "castore.json"
INDEX_DIR: Final = "index"
INDEX_SUFFIX: Final = ".json"
BLOBS_DIR: Final = "blobs"
BLOB_SUFFIX: Final = ".zst"
PACKS_DIR: Final = "packs"
PACK_SUFFIX: Final = ".pack"
PACK_INDEX_SUFFIX: Final = ".idx"
STATE_DIR: Final = ".castore"
LOCKS_DIR: Final = "locks"
QUARANTINE_DIR: Final = "quarantine"
#: Frames cut out of remote packs this checkout lacks (``StoredBlobs.warm_up``), laid out
#: as a store's loose blobs: local, derived, fetched again if removed.
CUT_FRAMES_DIR: Final = "cut-frames"
LAST_RUN_NAME: Final = "last-run.json"
#: Local, derived state (git-ignored with the rest of STATE_DIR): the lookup table of
#: every pack's blobs, rebuilt from the ``.idx`` files whenever they change.
PACK_TABLE_NAME: Final = "pack-table"
#: Local state: what the store looked like after the last complete ``castore gc``.
GC_STAMP_NAME: Final = "gc-stamp.json"

# Size caps for the JSON files castore reads (safe_files.py refuses larger ones unread).
#: An index of 150,000 entries is about 60 MB.
MAX_INDEX_BYTES: Final = 512 * 1024 * 1024
MAX_CONFIG_BYTES: Final = 16 * 1024 * 1024
#: A pack index line is about 80 bytes: 64 MiB is 800,000 blobs in one pack.
MAX_PACK_INDEX_BYTES: Final = 64 * 1024 * 1024
MAX_LAST_RUN_BYTES: Final = 512 * 1024 * 1024

#: Where a project's store lives when its pytest configuration names no ``castore_root``.
DEFAULT_ROOT: Final = "tests/fixtures/castore"

#: A blob's name: the 64-hex blake3 digest of the value's msgpack bytes.
DIGEST: Final = re.compile(r"[0-9a-f]{64}")


class FileKind(StrEnum):
    """The kinds of file that hold a store's values, as the file seam (``files/``) stores
    them: each kind is a folder and a naming rule, the same in a checkout, a git revision
    and a remote."""

    BLOB = "blob"
    """A loose blob: one zstd frame, named by the value's digest."""
    PACK = "pack"
    """Many frames in one immutable file, named by the digest of its bytes."""
    PACK_INDEX = "pack-index"
    """A pack's table of contents, as text (plain git, beside the namespace indexes)."""


#: Largest file of each kind castore reads whole; a larger one is refused unread.
MAX_FILE_BYTES: Final = {
    FileKind.BLOB: 1024 * 1024 * 1024,
    FileKind.PACK: 2 * 2**30,
    FileKind.PACK_INDEX: MAX_PACK_INDEX_BYTES,
}


def relative_path(kind: FileKind, name: str) -> str:
    """Where a file of ``kind`` named ``name`` sits inside a store (``/``-separated): the
    same path in a checkout, in a git tree and under a remote's prefix."""
    if kind is FileKind.BLOB:
        return f"{BLOBS_DIR}/{name[:2]}/{name}{BLOB_SUFFIX}"
    if kind is FileKind.PACK:
        return f"{PACKS_DIR}/{name}{PACK_SUFFIX}"
    return f"{PACKS_DIR}/{name}{PACK_INDEX_SUFFIX}"


def file_at(relative: str) -> tuple[FileKind, str] | None:
    """The kind and name of the file at ``relative`` (as :func:`relative_path` spells it),
    or None for anything else: a temporary file, a misplaced blob, a foreign file."""
    parts = relative.split("/")
    if len(parts) == 3 and parts[0] == BLOBS_DIR and parts[2].endswith(BLOB_SUFFIX):
        name = parts[2][: -len(BLOB_SUFFIX)]
        if is_digest(name) and name.startswith(parts[1]) and len(parts[1]) == 2:
            return FileKind.BLOB, name
        return None
    if len(parts) == 2 and parts[0] == PACKS_DIR:
        for suffix, kind in (
            (PACK_SUFFIX, FileKind.PACK),
            (PACK_INDEX_SUFFIX, FileKind.PACK_INDEX),
        ):
            name = parts[1].removesuffix(suffix)
            if name != parts[1] and is_digest(name):
                return kind, name
    return None


def is_digest(text: object) -> TypeGuard[str]:
    """Whether ``text`` names a blob: 64 lowercase hex digits, blake3's digest."""
    return isinstance(text, str) and DIGEST.fullmatch(text) is not None


def check_format_version(
    document: object, field: str, supported: int, path: str | os.PathLike[str], *, missing: str
) -> int:
    """The version in ``document[field]``; a file from a newer castore is refused by name.

    Every castore file (index, castore.json, last-run.json) starts with such a field, so
    an older castore never misreads a newer layout; ``missing`` says what the file should
    have been when the field is absent.
    """
    if not isinstance(document, Mapping) or field not in document:
        raise IndexFormatError(Path(path), missing)
    version: Any = document[field]
    if not isinstance(version, int) or isinstance(version, bool):
        raise IndexFormatError(Path(path), f"'{field}' must be an integer, found {version!r}")
    if version > supported:
        raise UnsupportedFormatError(Path(path), version, supported)
    return version
