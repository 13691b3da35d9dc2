"""The store on disk: every file and folder name, the digest that names blobs, format versions.

::

    <root>/castore.json                    compression settings, dictionaries (config.py)
    <root>/index/<namespace>.json          one sorted JSON index per namespace (index.py)
    <root>/blobs/ab/ab…(64 hex).zst        one zstd frame per value (blobs/loose.py)
    <root>/packs/<64 hex>.pack             many frames in one file, in git-lfs (blobs/packed.py)
    <root>/packs/<64 hex>.idx              that pack's table of contents, in plain git
    <root>/.castore/                       local state, git-ignored: locks, last run, quarantine

Every other module names these paths through this one, so a new kind of file is one more
line here, and ``castore git setup`` writes attributes for exactly what a store holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
LAST_RUN_NAME: Final = "last-run.json"

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


def is_digest(text: object) -> TypeGuard[str]:
    """Whether ``text`` names a blob: 64 lowercase hex digits, blake3's digest."""
    return isinstance(text, str) and DIGEST.fullmatch(text) is not None


def check_format_version(
    document: object, field: str, supported: int, path: Path, *, missing: str
) -> int:
    """The version in ``document[field]``; a file from a newer castore is refused by name.

    Every castore file (index, castore.json, last-run.json) starts with such a field, so
    an older castore never misreads a newer layout; ``missing`` says what the file should
    have been when the field is absent.
    """
    if not isinstance(document, Mapping) or field not in document:
        raise IndexFormatError(path, missing)
    version: Any = document[field]
    if not isinstance(version, int) or isinstance(version, bool):
        raise IndexFormatError(path, f"'{field}' must be an integer, found {version!r}")
    if version > supported:
        raise UnsupportedFormatError(path, version, supported)
    return version
