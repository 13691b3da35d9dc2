"""git-lfs in a checkout: pointer files standing in for content, and the lazy fetch that
replaces them, as a warm-up of the folder backend.

A clone made without LFS content (``GIT_LFS_SKIP_SMUDGE=1``, or ``lfs.fetchexclude``)
holds pointer files where packs and loose blobs should be. Before the tests run, the
pytest plugin asks the store to warm up the files the collected test modules need;
:class:`LfsFiles` replaces those still pointers in one ``git lfs pull --include=…`` per
session (split only if the command line would be too long). git-lfs sends them in its
batch API, so a run of one module costs a request or two, not one per value.

Nothing here raises on a failed fetch (no git-lfs, no server): the failure is reported,
and a replay of a file still missing ends in the clear :class:`LfsPointerError`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from castore._storage.files.seam import FileHandle, FileInfo, Files, RangeReader, Warmup
from castore._storage.layout import FileKind

if TYPE_CHECKING:
    from castore._storage.files.folder import FolderFiles

#: Longest ``--include`` list given to one ``git lfs pull`` (command lines have limits).
MAX_INCLUDE_CHARS: Final = 60_000


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def include_chunks(items: list[str]) -> Iterable[list[str]]:
    """``items`` in runs short enough for one ``--include=`` argument."""
    chunk: list[str] = []
    length = 0
    for item in items:
        if chunk and length + len(item) + 1 > MAX_INCLUDE_CHARS:
            yield chunk
            chunk, length = [], 0
        chunk.append(item)
        length += len(item) + 1
    if chunk:
        yield chunk


class LfsFiles(Files):
    """A checkout's folder whose files may still be git-lfs pointers: everything passes
    through to the folder, and :meth:`warm_up` pulls the pointers among the files asked
    for in one batch."""

    def __init__(self, folder: FolderFiles) -> None:
        self.folder = folder

    def __repr__(self) -> str:
        return f"LfsFiles({self.folder!r})"

    def unwrap(self) -> Files:
        return self.folder

    def describe(self) -> str:
        return self.folder.describe()

    def read(self, kind: FileKind, name: str) -> bytes | None:
        return self.folder.read(kind, name)

    def open_ranges(self, kind: FileKind, name: str) -> RangeReader | None:
        return self.folder.open_ranges(kind, name)

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        self.folder.write(kind, name, data, durable=durable)

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        return self.folder.stat(kind, name)

    def signature(self, kind: FileKind) -> object:
        return self.folder.signature(kind)

    def holds(self, kind: FileKind, name: str) -> bool:
        return self.folder.holds(kind, name)

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        return self.folder.listing(kind)

    def delete(self, kind: FileKind, name: str) -> None:
        self.folder.delete(kind, name)

    def sync(self) -> None:
        self.folder.sync()

    def location(self, kind: FileKind, name: str) -> Path:
        return self.folder.location(kind, name)

    def warm_up(self, handles: Iterable[FileHandle]) -> list[Warmup]:
        """Replace every pointer file among ``handles`` with its content from LFS."""
        handles = list(handles)
        pointers = sorted(
            {self.folder.location(*handle) for handle in self.folder.missing(handles)}
        )
        pointers = [path for path in pointers if path.is_file()]  # absent: not LFS's
        report = Warmup("LFS", wanted=len(pointers))
        if not pointers:
            return []
        started = time.perf_counter()
        try:
            top = _git(pointers[0].parent, "rev-parse", "--show-toplevel")
        except FileNotFoundError:
            report.problem = "git is not installed; run `git lfs pull` yourself"
            return [report]
        if top.returncode != 0:
            report.problem = f"the store is not in a git repository ({top.stderr.strip()})"
            return [report]
        repo = Path(top.stdout.strip())
        relative = [path.resolve().relative_to(repo.resolve()).as_posix() for path in pointers]
        for chunk in include_chunks(relative):
            # lfs.fetchexclude may be what kept these out of the clone: the include wins.
            run = _git(
                repo, "-c", "lfs.fetchexclude=", "lfs", "pull", f"--include={','.join(chunk)}"
            )
            if run.returncode != 0:
                lines = (run.stderr or run.stdout).strip().splitlines()
                report.problem = lines[-1] if lines else f"git lfs pull exited {run.returncode}"
                break
        report.seconds = time.perf_counter() - started
        still = {self.folder.location(*handle) for handle in self.folder.missing(handles)}
        for path in pointers:
            if path not in still:
                report.objects += 1
                report.bytes += path.stat().st_size
        if not report.problem and report.objects < len(pointers):
            report.problem = f"{len(pointers) - report.objects} object(s) were not on the server"
        if report.problem:
            report.problem += "; run `git lfs pull` yourself"
        return [report]
