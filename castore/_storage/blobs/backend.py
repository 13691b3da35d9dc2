"""The seam under the store: where blob frames are kept.

A backend only moves bytes: a frame in, a frame out, by digest. It never decodes a frame
or checks a digest (``verified.py`` does, once, for every backend). Backends compose the
way hypothesis composes its example databases: a read-only view and a read-through tier
are small wrappers (``wrappers.py``) around any backend, so a new place to keep blobs
(packs, a remote) is a new small class, not a new branch in every reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One stored blob as a backend lists it."""

    digest: str
    path: Path
    """The file that holds it (for messages and for git)."""
    size: int
    """Bytes on disk (compressed)."""
    mtime: float


class BlobBackend(ABC):
    """Where blob frames live: read, write, exists, delete, walk and sync, by digest."""

    @abstractmethod
    def read(self, digest: str) -> bytes | None:
        """The frame as stored, or None if this backend does not hold the blob."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        """Store (or replace) a frame atomically. ``durable=False`` defers the fsync to
        :meth:`sync`, for batches that make thousands of blobs durable at once."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob; a blob that is not there is no error."""

    @abstractmethod
    def walk(self) -> Iterator[BlobFile]:
        """Every blob held, in digest order."""

    @abstractmethod
    def location(self, digest: str) -> Path:
        """The file that holds (or would hold) the blob: what error messages name."""

    def sync(self) -> None:  # noqa: B027 - a backend without deferred writes has nothing to do
        """Make every write done with ``durable=False`` durable."""

    def strays(self) -> Iterator[BlobFile]:
        """Files in the backend's place that are not blobs (leftovers of killed writers,
        misplaced files); ``digest`` is empty for these."""
        return iter(())

    def quarantine(self, digest: str, folder: Path) -> Path:
        """Move a damaged blob aside into ``folder``; returns where it went."""
        raise NotImplementedError(f"{type(self).__name__} cannot quarantine blobs")
