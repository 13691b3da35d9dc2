"""Backends made of backends: a read-only view, and a read-through tier.

As hypothesis's ``ReadOnlyDatabase`` and ``MultiplexedDatabase`` wrap any example database,
these wrap any :class:`BlobBackend`, so each new kind of storage composes with them for
free: a shared cache directory read through from a local store, a store opened for replay
only, and later a remote tier behind the loose files and packs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from castore._storage.blobs.backend import BlobBackend, BlobFile
from castore.errors import ReadOnlyStoreError


class ReadOnlyBlobs(BlobBackend):
    """Reads pass through; anything that would change the backend is refused by name."""

    def __init__(self, inner: BlobBackend) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"ReadOnlyBlobs({self.inner!r})"

    def read(self, digest: str) -> bytes | None:
        return self.inner.read(digest)

    def exists(self, digest: str) -> bool:
        return self.inner.exists(digest)

    def walk(self) -> Iterator[BlobFile]:
        return self.inner.walk()

    def strays(self) -> Iterator[BlobFile]:
        return self.inner.strays()

    def location(self, digest: str) -> Path:
        return self.inner.location(digest)

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        raise ReadOnlyStoreError(f"write blob {digest[:16]}…", self.location(digest))

    def delete(self, digest: str) -> None:
        raise ReadOnlyStoreError(f"delete blob {digest[:16]}…", self.location(digest))

    def quarantine(self, digest: str, folder: Path) -> Path:
        raise ReadOnlyStoreError(f"quarantine blob {digest[:16]}…", self.location(digest))


class ReadThroughBlobs(BlobBackend):
    """A local backend in front of a slower one: a blob missing locally is read from
    ``source`` and kept locally, so each blob crosses from the source once. Writes,
    deletes and walks concern the local backend only; the source is never changed.

    Bytes are copied as they are: the digest check above the backends (``verified.py``)
    judges the copy exactly as it would have judged the source, so a damaged source blob
    fails every read, locally too, and ``castore verify`` names it."""

    def __init__(self, local: BlobBackend, source: BlobBackend) -> None:
        self.local = local
        self.source = source

    def __repr__(self) -> str:
        return f"ReadThroughBlobs({self.local!r}, {self.source!r})"

    def read(self, digest: str) -> bytes | None:
        frame = self.local.read(digest)
        if frame is None:
            frame = self.source.read(digest)
            if frame is not None:
                self.local.write(digest, frame)
        return frame

    def exists(self, digest: str) -> bool:
        return self.local.exists(digest) or self.source.exists(digest)

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        self.local.write(digest, frame, durable=durable)

    def delete(self, digest: str) -> None:
        self.local.delete(digest)

    def walk(self) -> Iterator[BlobFile]:
        return self.local.walk()

    def strays(self) -> Iterator[BlobFile]:
        return self.local.strays()

    def sync(self) -> None:
        self.local.sync()

    def location(self, digest: str) -> Path:
        if not self.local.exists(digest) and self.source.exists(digest):
            return self.source.location(digest)
        return self.local.location(digest)

    def quarantine(self, digest: str, folder: Path) -> Path:
        return self.local.quarantine(digest, folder)
