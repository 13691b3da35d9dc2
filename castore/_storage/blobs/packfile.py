"""The pack format: many blob frames in one immutable file, and its small text index.

A pack is what git-lfs stores in place of thousands of tiny blob files. Its bytes::

    b"CASTPACK" | format u32 | count u32          header, 16 bytes
    frame 1 | frame 2 | ...                       each a blob's zstd frame, unchanged
    count x (digest 32 bytes | offset u64 | length u32)    trailer
    trailer offset u64 | b"KCAPTSAC"              footer, 16 bytes

Each frame is exactly what a loose blob file holds, so the one read path
(``verified.py``) checks it the same way, digest included. The pack is named by the
blake3 digest of all its bytes: the same blobs in the same order give the same pack,
so two machines packing one store upload nothing new to LFS.

The pack's index, ``packs/<name>.idx``, repeats the trailer as text (one line per blob,
in pack order) and stays in plain git, beside the namespace indexes: castore knows which
pack holds a blob, and which packs a test module needs, without downloading any pack.
The trailer inside the pack lets ``castore verify`` check that index against the pack.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final, NamedTuple

import blake3

from castore._storage.layout import is_digest
from castore.errors import IndexFormatError, UnsupportedFormatError

PACK_FORMAT: Final = 1
PACK_MAGIC: Final = b"CASTPACK"
FOOTER_MAGIC: Final = b"KCAPTSAC"
_HEADER: Final = struct.Struct(">8sII")
_RECORD: Final = struct.Struct(">32sQI")
_FOOTER: Final = struct.Struct(">Q8s")
INDEX_HEADER: Final = "castore-pack-index"
#: Largest pack castore reads whole (to check or rebuild it); packs are written at about
#: 8 MiB, and one blob larger than that makes a pack of its own.
MAX_PACK_BYTES: Final = 2 * 2**30


class Slot(NamedTuple):
    """Where one blob's frame sits in a pack."""

    offset: int
    length: int


class PackIndex(NamedTuple):
    """A pack's table of contents, as its ``.idx`` file holds it."""

    name: str
    """The pack's own digest (its file is ``<name>.pack``)."""
    size: int
    """Bytes of the pack file."""
    dictionary: int
    """The zstd dictionary id the pack's frames were compressed with (0: none)."""
    slots: dict[str, Slot]
    """Blob digest -> where its frame sits, in pack order."""


def build_pack(frames: Iterable[tuple[str, bytes]], dictionary: int) -> tuple[bytes, PackIndex]:
    """The bytes of a pack holding ``frames`` (digest, zstd frame) in the order given, and
    its index. Deterministic: equal input, equal bytes, equal name."""
    parts: list[bytes] = []
    slots: dict[str, Slot] = {}
    offset = _HEADER.size
    for blob, frame in frames:
        if blob in slots:
            continue
        slots[blob] = Slot(offset, len(frame))
        parts.append(frame)
        offset += len(frame)
    header = _HEADER.pack(PACK_MAGIC, PACK_FORMAT, len(slots))
    trailer = b"".join(
        _RECORD.pack(bytes.fromhex(blob), slot.offset, slot.length) for blob, slot in slots.items()
    )
    data = b"".join([header, *parts, trailer, _FOOTER.pack(offset, FOOTER_MAGIC)])
    name = blake3.blake3(data).hexdigest()
    return data, PackIndex(name, len(data), dictionary, slots)


def pack_digest(data: bytes | memoryview) -> str:
    return blake3.blake3(data).hexdigest()


def read_trailer(data: bytes | memoryview, path: Path) -> dict[str, Slot]:
    """The slots the pack itself lists; a damaged pack raises IndexFormatError naming it."""
    if len(data) < _HEADER.size + _FOOTER.size:
        raise IndexFormatError(path, "too short to be a castore pack (truncated?)")
    magic, version, count = _HEADER.unpack_from(data, 0)
    if magic != PACK_MAGIC:
        raise IndexFormatError(path, "not a castore pack (bad magic)")
    if version > PACK_FORMAT:
        raise UnsupportedFormatError(path, version, PACK_FORMAT)
    trailer_offset, footer = _FOOTER.unpack_from(data, len(data) - _FOOTER.size)
    end = trailer_offset + count * _RECORD.size
    if footer != FOOTER_MAGIC or end != len(data) - _FOOTER.size:
        raise IndexFormatError(path, "its footer is damaged (truncated or overwritten?)")
    slots: dict[str, Slot] = {}
    for number in range(count):
        raw, offset, length = _RECORD.unpack_from(data, trailer_offset + number * _RECORD.size)
        if not _HEADER.size <= offset <= offset + length <= trailer_offset:
            raise IndexFormatError(path, f"entry {number} points outside the pack's frames")
        slots[raw.hex()] = Slot(offset, length)
    return slots


def dump_index(index: PackIndex) -> bytes:
    """The ``.idx`` text: a version line, a pack line, then ``digest offset length`` lines."""
    lines = [
        f"{INDEX_HEADER} {PACK_FORMAT}",
        f"pack {index.name} {index.size} {len(index.slots)} {index.dictionary}",
    ]
    lines += [f"{blob} {slot.offset} {slot.length}" for blob, slot in index.slots.items()]
    return ("\n".join(lines) + "\n").encode("ascii")


def parse_index(raw: bytes, path: Path) -> PackIndex:
    """Parse and check a ``.idx`` file; every problem names the file."""
    try:
        return _parse_index(raw.decode("ascii").splitlines(), path)
    except (_BadIndex, ValueError, IndexError, UnicodeDecodeError) as error:
        raise IndexFormatError(
            path, f"{error}; restore it from git (`git checkout -- {path}`)"
        ) from None


class _BadIndex(Exception):  # noqa: N818 - internal, becomes IndexFormatError
    pass


def _parse_index(lines: list[str], path: Path) -> PackIndex:
    magic, version = lines[0].split(" ")
    if magic != INDEX_HEADER:
        raise _BadIndex("not a castore pack index")
    if int(version) > PACK_FORMAT:
        raise UnsupportedFormatError(path, int(version), PACK_FORMAT)
    word, name, size, count, dictionary = lines[1].split(" ")
    if word != "pack" or not is_digest(name) or f"{name}.idx" != path.name:
        raise _BadIndex(f"its pack line does not name the pack {path.stem}")
    slots: dict[str, Slot] = {}
    limit = int(size) - _FOOTER.size
    for number, line in enumerate(lines[2:], start=3):
        blob, offset, length = line.split(" ")
        start, span = int(offset), int(length)
        if not is_digest(blob) or not _HEADER.size <= start <= start + span <= limit:
            raise _BadIndex(f"line {number} is not 'digest offset length' inside the pack")
        slots[sys.intern(blob)] = Slot(start, span)  # shared with Entry.blob (index.py)
    if len(slots) != int(count):
        raise _BadIndex(f"it lists {len(slots)} blobs, its pack line says {count}")
    return PackIndex(name, int(size), int(dictionary), slots)
