"""Reading a store's files without trusting what sits at their paths.

A store arrives from other people's branches, so a path that should hold a blob or an
index may hold a symlink to ``/dev/zero``, a FIFO, a directory or a file of gigabytes.
Every read of a store file goes through :func:`read_store_file`: it follows no symlink
at the last component (``O_NOFOLLOW``), never blocks on a FIFO (``O_NONBLOCK``), reads
regular files only, and refuses a file over its size cap before reading a byte of it.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from typing import Final

from castore.errors import UnsafePathError

_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


_INSIDE: set[tuple[str, str]] = set()
"""(store root, directory) pairs already found inside: replay checks each folder once."""


@functools.cache
def _real_root(root: str) -> str:
    return os.path.realpath(root)


def ensure_inside(root: str | os.PathLike[str], directory: str | os.PathLike[str]) -> None:
    """Refuse a folder of the store that resolves outside it: a symlink planted at
    ``blobs``, ``blobs/ab``, ``index/<dir>`` or ``.castore`` must not carry reads or
    writes out of the store. Folders that exist and pass are remembered."""
    key = (os.fspath(root), os.fspath(directory))
    if key in _INSIDE:
        return
    real_root = _real_root(key[0])
    real = os.path.realpath(key[1])
    if real != real_root and not real.startswith(real_root + os.sep):
        raise UnsafePathError(key[1], real)
    if os.path.isdir(real):  # noqa: PTH112 - string paths: this runs on the replay path
        _INSIDE.add(key)


class FileRefused(Exception):  # noqa: N818 - an internal signal, turned into a castore error
    """The file at a store path is not one castore will read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_store_file(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """The bytes of the regular file at ``path``, or None if nothing is there.

    Raises :class:`FileRefused` for a symlink, a directory, a device or pipe, a file over
    ``limit`` bytes, or one the system will not open (its errno's text is the reason).
    """
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileRefused(
                "it is a symbolic link, and castore follows none in a store"
            ) from None
        if error.errno == errno.ENOTDIR:
            return None  # a parent is a file: nothing can be at this path
        raise FileRefused(f"it cannot be opened ({error.strerror})") from None
    try:
        return _read_regular(fd, limit)
    except OSError as error:
        raise FileRefused(f"it cannot be read ({error.strerror})") from None
    finally:
        os.close(fd)


def read_user_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a file the user named (an import source): symlinks are followed, as
    the user chose the path, but a FIFO, device or directory, or a file over ``limit``,
    is refused unread. Raises FileNotFoundError and :class:`FileRefused`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise FileRefused(f"it cannot be opened ({error.strerror})") from None
    try:
        return _read_regular(fd, limit)
    except OSError as error:
        raise FileRefused(f"it cannot be read ({error.strerror})") from None
    finally:
        os.close(fd)


def _read_regular(fd: int, limit: int) -> bytes:
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        kind = "a directory" if stat.S_ISDIR(status.st_mode) else "a device, pipe or socket"
        raise FileRefused(f"it is {kind}, not a regular file")
    if status.st_size > limit:
        raise FileRefused(f"it is {status.st_size} bytes, over castore's {limit}-byte limit")
    chunks: list[bytes] = []
    remaining = status.st_size + 1  # one byte more tells a file that grew meanwhile
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk: no copy
    if len(data) > limit:
        raise FileRefused(f"it grew past castore's {limit}-byte limit while being read")
    return data
