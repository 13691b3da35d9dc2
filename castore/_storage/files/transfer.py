"""Copying files between two backends in one concurrent batch, each checked before it is
kept: what a read-through warm-up, ``castore pull`` and ``castore push`` share; and
copying ranges of files (:func:`copy_ranges`), each kept as a file of its own.

The target only ever receives a file that passed its check (a pack must hash to its
name), written whole, so a damaged source or a transfer cut off half-way never leaves a
damaged file behind: at worst a file is not there yet, and the next run brings it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from castore._storage.files.seam import Cut, FileHandle, Files
from castore._storage.layout import FileKind

#: Checks a file before it is kept: None if sound, else what is wrong with it.
FileCheck = Callable[[FileKind, str, bytes], "str | None"]
#: Wraps a long loop, e.g. with a progress bar: (items, how many, label) -> items.
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]
#: Files in flight at once.
CONCURRENCY: Final = 16


def no_progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    return items


@dataclass
class Copied:
    """What one batch copied."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    absent: list[FileHandle] = field(default_factory=list)
    """Files the source does not hold."""
    damaged: list[tuple[FileHandle, str]] = field(default_factory=list)
    """Files the source holds that failed their check twice (never kept)."""


def copy_files(
    source: Files,
    target: Files,
    handles: Iterable[FileHandle],
    *,
    check: FileCheck | None = None,
    progress: Progress = no_progress,
    label: str = "copying",
) -> Copied:
    """Copy ``handles`` from ``source`` to ``target``, :data:`CONCURRENCY` at a time,
    each read, checked (once more on failure: a transfer can be cut), then written."""
    wanted = list(dict.fromkeys(handles))
    report = Copied()
    started = time.perf_counter()

    def one(handle: FileHandle) -> tuple[FileHandle, int | None, str | None]:
        problem: str | None = None
        for _ in range(2):
            data = source.read(*handle)
            if data is None:
                return handle, None, None
            problem = None if check is None else check(handle.kind, handle.name, data)
            if problem is None:
                target.write(handle.kind, handle.name, data)
                return handle, len(data), None
        return handle, None, problem

    if wanted:
        with ThreadPoolExecutor(min(CONCURRENCY, len(wanted))) as pool:
            results: Iterator[tuple[FileHandle, int | None, str | None]] = pool.map(one, wanted)
            for handle, size, problem in progress(results, len(wanted), label):
                if problem is not None:
                    report.damaged.append((handle, problem))
                elif size is None:
                    report.absent.append(handle)
                else:
                    report.files += 1
                    report.bytes += size
    report.seconds = time.perf_counter() - started
    return report


def copy_ranges(
    source: Files, target: Files, cuts: Iterable[Cut], *, check: FileCheck | None = None
) -> Copied:
    """Read each cut's range of its source file (one ranged request each, concurrently),
    check it as the file it becomes (once more on failure), and write it to ``target``.
    A source file that is absent leaves the cut in
    ``absent``; a range that comes back short or fails its check, twice, is in
    ``damaged`` and never kept."""
    wanted = list(dict.fromkeys(cuts))
    report = Copied()
    started = time.perf_counter()

    def one(cut: Cut) -> tuple[Cut, int | None, str | None]:
        problem: str | None = None
        for _ in range(2):
            data = source.read_range(*cut.source, cut.offset, cut.length)
            if data is None:
                return cut, None, None
            if len(data) != cut.length:
                problem = f"{cut.source} ends before this frame (truncated?)"
                continue
            problem = None if check is None else check(*cut.target, data)
            if problem is None:
                target.write(*cut.target, data, durable=False)
                return cut, len(data), None
        return cut, None, problem

    if wanted:
        with ThreadPoolExecutor(min(CONCURRENCY, len(wanted))) as pool:
            for cut, size, problem in pool.map(one, wanted):
                if problem is not None:
                    report.damaged.append((cut.target, problem))
                elif size is None:
                    report.absent.append(cut.target)
                else:
                    report.files += 1
                    report.bytes += size
        target.sync()  # one flush for the batch: a cut is never read back torn
    report.seconds = time.perf_counter() - started
    return report
