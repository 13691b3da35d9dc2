"""git-lfs pointer files: what a checkout holds where content should be, before a pull.

A pointer is a short text file (about 130 bytes) naming the object's sha256. castore
treats one at a blob's or a pack's path as the file missing: a warm-up fetches it, and a
read that still finds one says to run ``git lfs pull``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from castore._storage.safe_files import FileRefused, read_store_file

LFS_POINTER_PREFIX: Final = b"version https://git-lfs.github.com/spec/"
#: A pointer file is about 130 bytes; anything over this is real content.
MAX_POINTER_BYTES: Final = 1024


def is_lfs_pointer(data: bytes) -> bool:
    """True for the bytes of a git-lfs pointer file (what a clone holds before a pull)."""
    return len(data) < MAX_POINTER_BYTES and data.startswith(LFS_POINTER_PREFIX)


def is_pointer_file(path: Path) -> bool:
    """True for a git-lfs pointer file at ``path`` (read without following symlinks):
    what ``castore git setup`` asks of files git has staged, outside any store's seam."""
    try:
        if os.lstat(path).st_size >= MAX_POINTER_BYTES:
            return False
        data = read_store_file(path, MAX_POINTER_BYTES)
    except (OSError, FileRefused):
        return False
    return data is not None and is_lfs_pointer(data)
