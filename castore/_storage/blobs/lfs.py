"""Lazy fetch: download from git-lfs only the packs and blobs a test run needs.

A clone made without LFS content (``GIT_LFS_SKIP_SMUDGE=1``, or ``lfs.fetchexclude``)
holds pointer files where packs and loose blobs should be. Before the tests run, the
pytest plugin asks the store which files the collected test modules' namespaces need
(:meth:`StoreCore.files_for`), and this module replaces those still pointers in one
``git lfs pull --include=…`` per session (split only if the command line would be too
long). git-lfs sends them in its batch API, so a run of one module costs a request or
two, not one per value. pytest-xdist workers take a file lock first: the first one
fetches, the others find the files already there.

Nothing here raises on a failed fetch (no git-lfs, no server): the failure is reported,
and a replay of a blob still missing ends in today's clear :class:`LfsPointerError`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from castore._storage.safe_files import FileRefused, read_store_file

LFS_POINTER_PREFIX: Final = b"version https://git-lfs.github.com/spec/"
#: A pointer file is about 130 bytes; anything over this is real content.
MAX_POINTER_BYTES: Final = 1024
#: Longest ``--include`` list given to one ``git lfs pull`` (command lines have limits).
MAX_INCLUDE_CHARS: Final = 60_000


@dataclass
class LfsFetch:
    """What one lazy fetch did."""

    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    wanted: int = 0
    """Pointer files found among the files the run needs."""
    problem: str = ""
    """Why the fetch failed, if it did (the replay then reports the pointers)."""

    def describe_problem(self) -> str:
        return (
            f"could not fetch {self.wanted - self.objects} of {self.wanted} object(s) from "
            f"LFS: {self.problem}; run `git lfs pull` yourself"
        )


def is_lfs_pointer(data: bytes) -> bool:
    """True for the bytes of a git-lfs pointer file (what a clone holds before a pull)."""
    return len(data) < MAX_POINTER_BYTES and data.startswith(LFS_POINTER_PREFIX)


def is_pointer_file(path: Path) -> bool:
    """True for a git-lfs pointer file at ``path`` (read without following symlinks)."""
    if not _small(path):
        return False
    try:
        data = read_store_file(path, MAX_POINTER_BYTES)
    except FileRefused:
        return False
    return (
        data is not None and len(data) < MAX_POINTER_BYTES and data.startswith(LFS_POINTER_PREFIX)
    )


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def fetch(paths: Iterable[Path]) -> LfsFetch:
    """Replace every pointer file among ``paths`` with its content from the LFS server."""
    pointers = sorted({path for path in paths if is_pointer_file(path)})
    report = LfsFetch(wanted=len(pointers))
    if not pointers:
        return report
    started = time.perf_counter()
    try:
        top = _git(pointers[0].parent, "rev-parse", "--show-toplevel")
    except FileNotFoundError:
        report.problem = "git is not installed"
        return report
    if top.returncode != 0:
        report.problem = f"the store is not in a git repository ({top.stderr.strip()})"
        return report
    repo = Path(top.stdout.strip())
    relative = [path.resolve().relative_to(repo.resolve()).as_posix() for path in pointers]
    for chunk in include_chunks(relative):
        # lfs.fetchexclude may be what kept these out of the clone: the include wins here.
        run = _git(repo, "-c", "lfs.fetchexclude=", "lfs", "pull", f"--include={','.join(chunk)}")
        if run.returncode != 0:
            lines = (run.stderr or run.stdout).strip().splitlines()
            report.problem = lines[-1] if lines else f"git lfs pull exited {run.returncode}"
            break
    report.seconds = time.perf_counter() - started
    for path in pointers:
        if not is_pointer_file(path):
            report.objects += 1
            report.bytes += path.stat().st_size
    if not report.problem and report.objects < len(pointers):
        report.problem = f"{len(pointers) - report.objects} object(s) were not on the server"
    return report


def _small(path: Path) -> bool:
    try:
        return os.lstat(path).st_size < MAX_POINTER_BYTES
    except OSError:
        return False


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
