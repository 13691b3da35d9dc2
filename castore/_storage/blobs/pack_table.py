"""The lookup table of every pack's blobs: which pack holds a blob, and where in it.

A session asks the table only for the blobs it reads, so its cost follows the tests run,
not the store: the table is one binary file in the store's local state
(``.castore/pack-table``), sorted by digest behind a 65,536-slot fan-out, memory-mapped,
so a lookup touches two pages and builds no Python object per blob. It is derived from
the ``.idx`` files (what git tracks) and rebuilt whenever their listing changes (names,
sizes, modification times); a store that cannot be written keeps the table in memory.

The file never serves a wrong value: every frame read through it is still checked
against its digest above (``verified.py``), and a table that is malformed, or that does
not belong to the listing it claims, is rebuilt rather than trusted. ::

    b"CASTTBL1" | records u32 | packs u32 | listing key 32 bytes      header, 48 bytes
    packs x pack name (32 bytes)                                      ordinal -> pack
    65,537 x u32: index of the first record whose digest starts with each 2-byte prefix
    records x (digest 32 bytes | pack ordinal u32 | offset u32 | length u32)
"""

from __future__ import annotations

import array
import mmap
import os
import stat
import struct
import sys
from collections.abc import Iterable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Final

import blake3

from castore._storage.atomic import ensure_private_directory, write_atomic
from castore.errors import StoreWriteError

MAGIC: Final = b"CASTTBL1"
_HEADER: Final = struct.Struct(">8sII32s")
_FANOUT_SLOTS: Final = 65536
_PAIR: Final = struct.Struct(">II")
_RECORD: Final = struct.Struct(">32sIII")
_LOCATION: Final = struct.Struct(">III")
#: Largest table read: 44 bytes a blob, so about 24 million blobs.
MAX_TABLE_BYTES: Final = 1 << 30
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK

#: One pack's blobs for the table: (binary digest, offset, length).
PackSlots = Iterable[tuple[bytes, int, int]]


def listing_key(listing: Iterable[tuple[str, int, int]]) -> bytes:
    """What a table is valid for: the ``.idx`` files it was built from, as (pack name,
    size, modification time in ns), in name order."""
    hasher = blake3.blake3()
    for name, size, mtime_ns in sorted(listing):
        hasher.update(f"{name} {size} {mtime_ns}\n".encode())
    return hasher.digest()


def build_table(key: bytes, packs: Sequence[tuple[str, PackSlots]]) -> bytes:
    """The table's bytes for ``packs`` (name, slots), in the order given: a blob held by
    two packs is found in the first (packs are given sorted by name, as readers expect)."""
    records: dict[bytes, tuple[int, int, int]] = {}
    for ordinal, (_, slots) in enumerate(packs):
        for digest, offset, length in slots:
            records.setdefault(digest, (ordinal, offset, length))
    ordered = sorted(records)
    counts = [0] * (_FANOUT_SLOTS + 1)
    for digest in ordered:
        counts[(digest[0] << 8 | digest[1]) + 1] += 1
    fanout = array.array("I", accumulate(counts))  # C loops: a store without packs
    if sys.byteorder == "little":  # builds its empty table in a millisecond, not 20
        fanout.byteswap()
    parts = [
        _HEADER.pack(MAGIC, len(ordered), len(packs), key),
        b"".join(bytes.fromhex(name) for name, _ in packs),
        fanout.tobytes(),
    ]
    parts += [_RECORD.pack(digest, *records[digest]) for digest in ordered]
    return b"".join(parts)


class PackTable:
    """A built table, in a bytes object or a memory-mapped file."""

    __slots__ = ("_buffer", "_fanout_at", "_records_at", "count", "key", "names")

    def __init__(self, buffer: bytes | mmap.mmap) -> None:
        if len(buffer) < _HEADER.size:
            raise ValueError("too short")
        magic, count, packs, key = _HEADER.unpack_from(buffer, 0)
        names_at = _HEADER.size
        fanout_at = names_at + 32 * packs
        records_at = fanout_at + 4 * (_FANOUT_SLOTS + 1)
        if magic != MAGIC or len(buffer) != records_at + _RECORD.size * count:
            raise ValueError("not a pack table, or truncated")
        self.names = [buffer[at : at + 32].hex() for at in range(names_at, fanout_at, 32)]
        self.count = count
        self.key = key
        self._buffer = buffer  # a mapping is unmapped when the table is dropped
        self._fanout_at = fanout_at
        self._records_at = records_at
        if _PAIR.unpack_from(buffer, fanout_at + 4 * (_FANOUT_SLOTS - 1))[1] != count:
            raise ValueError("its fan-out does not add up")

    def locate(self, digest: str) -> tuple[int, int, int] | None:
        """(pack ordinal, offset, length) of a blob, or None: the digest's fan-out slot,
        one search of its few records (a match must start on a record), one unpack."""
        try:
            key = bytes.fromhex(digest)
        except ValueError:
            return None
        buffer, records = self._buffer, self._records_at
        first, last = _PAIR.unpack_from(buffer, self._fanout_at + ((key[0] << 8 | key[1]) << 2))
        at = buffer.find(key, records + first * 44, records + last * 44)
        while at >= 0 and (at - records) % 44:  # inside a record: not a digest
            at = buffer.find(key, at + 1, records + last * 44)
        if at < 0:
            return None
        found: tuple[int, int, int] = _LOCATION.unpack_from(buffer, at + 32)
        return found


def load_table(path: Path, key: bytes) -> PackTable | None:
    """The table at ``path`` if it is whole and built for ``key``; None otherwise."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or not _HEADER.size <= status.st_size:
            return None
        if status.st_size > MAX_TABLE_BYTES or os.pread(descriptor, 48, 0)[16:] != key:
            return None
        mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(descriptor)
    try:
        return PackTable(mapped)
    except ValueError:
        mapped.close()
        return None


def save_table(path: Path, data: bytes) -> bool:
    """Keep a built table for later sessions; False where the state folder cannot be
    written (a read-only checkout): the table then lives in memory for this process."""
    try:
        ensure_private_directory(path.parent)
        write_atomic(path, data, durable=False)
    except StoreWriteError:
        return False
    return True
