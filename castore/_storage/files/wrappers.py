"""Backends made of backends: a read-only view, and a read-through tier with a local cache.

As hypothesis's ``ReadOnlyDatabase`` wraps any example database and restic's cache wraps
any backend, these wrap any :class:`Files`, so each new place to keep files composes with
them for free: a checkout reading through to object storage, a store opened for replay
only, a shared folder in front of a slower one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from castore._storage.files.pointers import is_lfs_pointer
from castore._storage.files.seam import Cut, FileHandle, FileInfo, Files, RangeReader, Warmup

if TYPE_CHECKING:
    from castore._storage.files.transfer import FileCheck
from castore._storage.layout import FileKind
from castore.errors import CastoreError, ReadOnlyStoreError, RemoteObjectError


class ReadOnlyFiles(Files):
    """Reads pass through; anything that would change the backend is refused by name."""

    def __init__(self, inner: Files) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"ReadOnlyFiles({self.inner!r})"

    def unwrap(self) -> Files:
        return self.inner

    def describe(self) -> str:
        return self.inner.describe()

    def read(self, kind: FileKind, name: str) -> bytes | None:
        return self.inner.read(kind, name)

    def open_ranges(self, kind: FileKind, name: str) -> RangeReader | None:
        return self.inner.open_ranges(kind, name)

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        return self.inner.stat(kind, name)

    def signature(self, kind: FileKind) -> object:
        return self.inner.signature(kind)

    def holds(self, kind: FileKind, name: str) -> bool:
        return self.inner.holds(kind, name)

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        return self.inner.listing(kind)

    def location(self, kind: FileKind, name: str) -> Path:
        return self.inner.location(kind, name)

    def missing(self, handles: Iterable[FileHandle]) -> list[FileHandle]:
        return self.inner.missing(handles)

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        raise ReadOnlyStoreError(f"write {kind} {name[:16]}…", self.location(kind, name))

    def delete(self, kind: FileKind, name: str) -> None:
        raise ReadOnlyStoreError(f"delete {kind} {name[:16]}…", self.location(kind, name))


class ReadThroughFiles(Files):
    """A local backend in front of a slower source: a file missing locally (or still a
    git-lfs pointer) is read from ``source``, checked, and kept locally, so each file
    crosses once. Writes, deletes and listings concern the local backend only; the source
    is never changed (``castore push`` and ``gc --remote`` work on it directly).

    A downloaded file is checked (``check``: a pack must hash to its name) before it is
    kept, and kept atomically, so a damaged or truncated object never reaches the cache:
    it is fetched once more, then refused by name."""

    def __init__(
        self, local: Files, source: Files, *, label: str, check: FileCheck | None = None
    ) -> None:
        self.local = local
        self.source = source
        self.label = label
        self._check = check

    def __repr__(self) -> str:
        return f"ReadThroughFiles({self.local!r}, {self.source!r})"

    def unwrap(self) -> Files:
        return self.local

    def describe(self) -> str:
        return self.local.describe()

    def read(self, kind: FileKind, name: str) -> bytes | None:
        data = self.local.read(kind, name)
        if data is None or is_lfs_pointer(data):
            fetched = self._fetch(kind, name)
            if fetched is not None:
                return fetched
        return data

    def open_ranges(self, kind: FileKind, name: str) -> RangeReader | None:
        if not self.local.holds(kind, name):
            self._fetch(kind, name)
        return self.local.open_ranges(kind, name)

    def _fetch(self, kind: FileKind, name: str) -> bytes | None:
        """The file from the source, checked and kept locally; None if the source lacks it."""
        for attempt in range(2):
            data = self.source.read(kind, name)
            if data is None:
                return None
            problem = self._problem(kind, name, data)
            if problem is None:
                self.local.write(kind, name, data)
                return data
            if attempt:
                raise RemoteObjectError(self.label, self.source.location(kind, name), problem)
        return None  # pragma: no cover - the loop returns or raises

    def _problem(self, kind: FileKind, name: str, data: bytes) -> str | None:
        return None if self._check is None else self._check(kind, name, data)

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        self.local.write(kind, name, data, durable=durable)

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        return self.local.stat(kind, name)

    def signature(self, kind: FileKind) -> object:
        return self.local.signature(kind)

    def holds(self, kind: FileKind, name: str) -> bool:
        return self.local.holds(kind, name)

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        return self.local.listing(kind)

    def delete(self, kind: FileKind, name: str) -> None:
        self.local.delete(kind, name)

    def sync(self) -> None:
        self.local.sync()

    def location(self, kind: FileKind, name: str) -> Path:
        return self.local.location(kind, name)

    def missing(self, handles: Iterable[FileHandle]) -> list[FileHandle]:
        return self.local.missing(handles)

    def warm_up(self, handles: Iterable[FileHandle]) -> list[Warmup]:
        """Fetch, in one concurrent batch, every file of ``handles`` the local side lacks;
        what the source lacks too goes to the local side's own warm-up (git-lfs)."""
        lacking = self.local.missing(list(handles))
        if not lacking:
            return []
        from castore._storage.files.transfer import copy_files  # noqa: PLC0415 - threads: when needed

        report = Warmup(self.label, wanted=len(lacking))
        absent: list[FileHandle] = []
        try:
            copied = copy_files(self.source, self.local, lacking, check=self._check)
        except CastoreError as error:
            report.problem = str(error)
            absent = self.local.missing(lacking)
        else:
            report.objects, report.bytes, report.seconds = (
                copied.files,
                copied.bytes,
                copied.seconds,
            )
            absent = copied.absent
            if copied.damaged:
                handle, problem = copied.damaged[0]
                report.problem = (
                    f"{len(copied.damaged)} object(s) on the remote are damaged and were not "
                    f"kept, e.g. {handle}: {problem}"
                )
        reports = [report]
        if absent:
            reports += self.local.warm_up(absent)  # a checkout may still have them in LFS
            absent = self.local.missing(absent)
        if absent and not report.problem:
            report.problem = (
                f"{len(absent)} object(s) are not on the remote, e.g. {absent[0]}: run "
                "`castore push` in a clone that has them"
            )
        return reports

    def warm_up_cuts(
        self, cuts: Iterable[Cut], target_for: Callable[[str], Files]
    ) -> tuple[Warmup, list[Cut]]:
        """Fetch ranges of source files (frames of packs the local side lacks), each
        checked as the file it becomes and kept in ``target_for(source file's name)``:
        when a selection needs a few blobs of a big pack, it pays for those, not for the
        pack. Returns the report and the cuts whose source file the remote lacks (the
        caller warms those files up whole: a checkout may have them in git-lfs, and the
        whole-file warm-up says so when nothing has them)."""
        from castore._storage.files.transfer import copy_ranges  # noqa: PLC0415 - threads: when needed

        wanted = list(cuts)
        report = Warmup(self.label, wanted=len(wanted))
        copied = copy_ranges(self.source, wanted, target_for, check=self._check)
        report.objects, report.bytes, report.seconds = copied.files, copied.bytes, copied.seconds
        if copied.damaged:
            cut, problem = copied.damaged[0]
            report.problem = (
                f"{len(copied.damaged)} blob(s) cut from packs on the remote are damaged and "
                f"were not kept, e.g. {cut.target} of {cut.source}: {problem}"
            )
        return report, copied.absent

    def close(self) -> None:
        self.source.close()
        self.local.close()
