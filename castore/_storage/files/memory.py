"""A store's files in memory: for tests, and for files read once and thrown away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from castore._storage.files.seam import FileInfo, Files
from castore._storage.layout import FileKind, relative_path


class BytesRanges:
    __slots__ = ("_data", "size")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def pread(self, length: int, offset: int, /) -> bytes:
        return self._data[offset : offset + length]

    def close(self) -> None:
        pass


class MemoryFiles(Files):
    """Files kept in a dict, by kind and name."""

    def __init__(self, label: str = "memory") -> None:
        self.files: dict[tuple[FileKind, str], tuple[bytes, float]] = {}
        self._label = label
        self._changes = 0

    def __repr__(self) -> str:
        return f"MemoryFiles({self._label!r})"

    def describe(self) -> str:
        return self._label

    def read(self, kind: FileKind, name: str) -> bytes | None:
        found = self.files.get((kind, name))
        return None if found is None else found[0]

    def open_ranges(self, kind: FileKind, name: str) -> BytesRanges | None:
        data = self.read(kind, name)
        return None if data is None else BytesRanges(data)

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        self.files[kind, name] = (bytes(data), time.time())
        self._changes += 1

    def signature(self, kind: FileKind) -> object:
        return self._changes

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        found = self.files.get((kind, name))
        return None if found is None else FileInfo(kind, name, len(found[0]), found[1])

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        for found_kind, name in sorted(key for key in self.files if key[0] is kind):
            data, mtime = self.files[found_kind, name]
            yield FileInfo(found_kind, name, len(data), mtime)

    def delete(self, kind: FileKind, name: str) -> None:
        self.files.pop((kind, name), None)
        self._changes += 1

    def location(self, kind: FileKind, name: str) -> Path:
        return Path(f"({self._label})", relative_path(kind, name))
