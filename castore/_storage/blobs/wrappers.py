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
from castore._storage.blobs.packed import PackedBlobs
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


class LayeredBlobs(BlobBackend):
    """A store's blobs as readers see them: packs first, then loose files.

    New blobs are written loose; ``castore pack`` moves them into packs. A lookup asks the
    packs first because that costs one dict access, where a loose miss costs a failed
    ``open``; a blob held both ways (packed, its loose copy not yet collected) is the same
    bytes either way, as its digest says. Deleting removes the loose copy only: a packed
    blob leaves when gc rewrites its pack.
    """

    def __init__(self, loose: BlobBackend, packed: PackedBlobs) -> None:
        self.loose = loose
        self.packed = packed

    def __repr__(self) -> str:
        return f"LayeredBlobs({self.loose!r}, {self.packed!r})"

    def read(self, digest: str) -> bytes | None:
        frame = self.packed.read_listed(digest)
        if frame is None:
            frame = self.loose.read(digest)
        if frame is None:  # packed by another process since the packs were listed?
            frame = self.packed.read(digest)
        return frame

    def exists(self, digest: str) -> bool:
        return self.loose.exists(digest) or self.packed.exists(digest)

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        self.loose.write(digest, frame, durable=durable)

    def sync(self) -> None:
        self.loose.sync()

    def delete(self, digest: str) -> None:
        self.loose.delete(digest)

    def walk(self) -> Iterator[BlobFile]:
        """Every blob once, in digest order; a blob held both ways is listed as packed."""
        loose, packed = self.loose.walk(), self.packed.walk()
        next_loose, next_packed = next(loose, None), next(packed, None)
        while next_loose is not None or next_packed is not None:
            if next_packed is None or (
                next_loose is not None and next_loose.digest < next_packed.digest
            ):
                assert next_loose is not None
                yield next_loose
                next_loose = next(loose, None)
                continue
            if next_loose is not None and next_loose.digest == next_packed.digest:
                next_loose = next(loose, None)
            yield next_packed
            next_packed = next(packed, None)

    def walk_loose(self) -> Iterator[BlobFile]:
        return self.loose.walk()

    def strays(self) -> Iterator[BlobFile]:
        yield from self.loose.strays()
        yield from self.packed.strays()

    def location(self, digest: str) -> Path:
        if self.packed.exists(digest) and not self.loose.exists(digest):
            return self.packed.location(digest)
        return self.loose.location(digest)

    def quarantine(self, digest: str, folder: Path) -> Path:
        return self.loose.quarantine(digest, folder)
