"""The seam itself: a store's value-holding files, read and written by kind and name.

A backend moves whole files (read, write, stat, list, delete) and ranges of them; it
never decodes what it holds. Every file a store keeps is named by a digest (a blob by its
value's, a pack by its own bytes'), so a name always means the same content: a backend
may keep the first copy it is given (object storage writes once), and a read-through
cache never has to ask whether its copy is stale.

Single-file calls take ``(kind, name)`` as two arguments rather than a handle object: a
replay reads a blob in microseconds, and building an object per read shows. Batches
(:meth:`Files.missing`, :meth:`Files.warm_up`) take :class:`FileHandle` tuples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

from castore._storage.layout import FileKind, relative_path


class FileHandle(NamedTuple):
    """One file of a store: its kind and name (restic's ``backend.Handle``)."""

    kind: FileKind
    name: str

    def __str__(self) -> str:
        return relative_path(self.kind, self.name)


class Cut(NamedTuple):
    """A range of a source file, kept as a file of its own in the target: a blob's frame
    cut out of a pack that the target lacks, when the rest of the pack is not needed."""

    source: FileHandle
    offset: int
    length: int
    target: FileHandle


class FileInfo(NamedTuple):
    """What a backend knows of one file without reading it."""

    kind: FileKind
    name: str
    size: int
    mtime: float
    """Seconds since the epoch: a file's modification time, an object's last-modified."""

    @property
    def handle(self) -> FileHandle:
        return FileHandle(self.kind, self.name)


class RangeReader(Protocol):
    """An open file read by ranges: ``pread(length, offset)`` as ``os.pread`` has it (a
    short result means the file ends sooner). Packs are read this way, one frame a read."""

    size: int

    def pread(self, length: int, offset: int, /) -> bytes: ...

    def close(self) -> None: ...


class Warmup:
    """What one warm-up fetched, from where, and what went wrong. (A plain class: a
    dataclass costs every process that imports castore a millisecond on Python 3.11.)"""

    __slots__ = ("bytes", "objects", "problem", "seconds", "source", "wanted")

    def __init__(
        self,
        source: str,
        *,
        wanted: int = 0,
        objects: int = 0,
        bytes: int = 0,
        seconds: float = 0.0,
        problem: str = "",
    ) -> None:
        self.source = source
        """Where the files came from, as the report names it: ``LFS``, ``remote NAME``."""
        self.wanted = wanted
        """Files asked for that this backend lacked."""
        self.objects = objects
        self.bytes = bytes
        self.seconds = seconds
        self.problem = problem
        """Why some wanted files are still missing, if they are (the replay reports them)."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Warmup({fields})"

    def describe_problem(self) -> str:
        return (
            f"could not fetch {self.wanted - self.objects} of {self.wanted} object(s) from "
            f"{self.source}: {self.problem}"
        )


def merged_warmups(reports: Iterable[Warmup]) -> list[Warmup]:
    """One report per source: a warm-up that fetched whole files and cut frames from one
    remote says so in one line."""
    by_source: dict[str, Warmup] = {}
    problems: dict[str, list[str]] = {}
    for report in reports:
        into = by_source.setdefault(report.source, Warmup(report.source))
        into.wanted += report.wanted
        into.objects += report.objects
        into.bytes += report.bytes
        into.seconds += report.seconds
        said = problems.setdefault(report.source, [])
        if report.problem and report.problem not in said:  # two batches, one failure
            said.append(report.problem)
            into.problem = "; ".join(said)
    return list(by_source.values())


class Files(ABC):
    """Where a store's value-holding files live.

    ``read`` and ``open_ranges`` return None for a file that is not there; a file that is
    there but cannot be read (a symlink, a device, one over its size cap) raises
    :class:`~castore._storage.safe_files.FileRefused` for the layout above to name.
    """

    @abstractmethod
    def read(self, kind: FileKind, name: str) -> bytes | None:
        """The whole file, or None if this backend does not hold it."""

    @abstractmethod
    def open_ranges(self, kind: FileKind, name: str) -> RangeReader | None:
        """The file opened for ranged reads, or None if it is not held."""

    def read_range(self, kind: FileKind, name: str, offset: int, length: int) -> bytes | None:
        reader = self.open_ranges(kind, name)
        if reader is None:
            return None
        try:
            return reader.pread(length, offset)
        finally:
            reader.close()

    @abstractmethod
    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        """Store a whole file atomically: a reader sees no file or all of it.
        ``durable=False`` defers the fsync to :meth:`sync` (batches of thousands)."""

    @abstractmethod
    def stat(self, kind: FileKind, name: str) -> FileInfo | None: ...

    @abstractmethod
    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        """Every well-named file of ``kind``, in name order."""

    @abstractmethod
    def delete(self, kind: FileKind, name: str) -> None:
        """Remove a file; one that is not there is no error."""

    @abstractmethod
    def location(self, kind: FileKind, name: str) -> Path:
        """Where the file is (or would be) for messages: a path in a checkout, or the
        file's path inside the store for places that have no path of their own."""

    def describe(self) -> str:
        """This backend, for messages: a folder, a URL, a revision."""
        return type(self).__name__

    def sync(self) -> None:  # noqa: B027 - a backend without deferred writes has nothing to do
        """Make every write done with ``durable=False`` durable."""

    def signature(self, kind: FileKind) -> object:
        """A token that changes whenever the listing of ``kind`` may have changed (a
        folder's modification time), so a reader can tell cheaply that another process
        added or removed files; None where the place offers none (list again)."""
        return None

    def holds(self, kind: FileKind, name: str) -> bool:
        """Whether the file is here with its content (a git-lfs pointer is not)."""
        return self.stat(kind, name) is not None

    def read_many(self, handles: Iterable[FileHandle]) -> Iterator[tuple[FileHandle, bytes | None]]:
        """Every file of ``handles`` (None for those not held), in any order: concurrently
        where the place is remote."""
        for handle in handles:
            yield handle, self.read(*handle)

    def missing(self, handles: Iterable[FileHandle]) -> list[FileHandle]:
        """Which of ``handles`` this backend lacks, asked in one go where the place
        allows it (Bazel's ``FindMissingBlobs``)."""
        return [handle for handle in handles if not self.holds(*handle)]

    def warm_up(self, handles: Iterable[FileHandle]) -> list[Warmup]:
        """Bring the files in ``handles`` close, in one batch, before they are read (as
        restic's ``StartWarmup`` for cold storage): a read-through cache fetches what it
        lacks, a git-lfs checkout pulls its pointers. Plain places hold everything."""
        return []

    def unwrap(self) -> Files | None:
        """The backend this one wraps, if it is a wrapper."""
        return None

    def close(self) -> None:  # noqa: B027 - most backends hold nothing open
        """Release what the backend holds open (connections, descriptors)."""


F = TypeVar("F", bound=Files)


def find_files(files: Files, kind: type[F]) -> F | None:
    """The first backend of type ``kind`` in a stack of wrappers (restic's
    ``AsBackend``): upkeep finds the local folder under a read-through cache this way."""
    current: Files | None = files
    while current is not None:
        if isinstance(current, kind):
            return current
        current = current.unwrap()
    return None
