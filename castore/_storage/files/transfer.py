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
from typing import Any, Final, Generic, TypeVar

from castore._storage.files.seam import Cut, FileHandle, Files
from castore._storage.layout import FileKind
from castore.errors import CastoreError

#: Checks a file before it is kept: None if sound, else what is wrong with it.
FileCheck = Callable[[FileKind, str, bytes], "str | None"]
#: Wraps a long loop, e.g. with a progress bar: (items, how many, label) -> items.
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]
#: Files in flight at once.
CONCURRENCY: Final = 16


def no_progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    return items


#: What a batch copies: whole files (:class:`FileHandle`) or ranges of them (:class:`Cut`).
Item = TypeVar("Item", FileHandle, Cut)


@dataclass
class Copied(Generic[Item]):
    """What one batch copied."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    absent: list[Item] = field(default_factory=list)
    """Files the source does not hold."""
    damaged: list[tuple[Item, str]] = field(default_factory=list)
    """What the source holds that failed its check twice (never kept)."""


#: One item's outcome: (the item, bytes kept or None, what was wrong or None).
Outcome = tuple[Item, "int | None", "str | None"]


def _run_batch(
    wanted: list[Item],
    one: Callable[[Item], Outcome[Item]],
    report: Copied[Item],
    progress: Progress = no_progress,
    label: str = "copying",
) -> None:
    """Run ``one`` over ``wanted``, :data:`CONCURRENCY` at a time, into ``report``."""
    if not wanted:
        return
    with ThreadPoolExecutor(min(CONCURRENCY, len(wanted))) as pool:
        results: Iterator[Outcome[Item]] = pool.map(one, wanted)
        for item, size, problem in progress(results, len(wanted), label):
            if problem is not None:
                report.damaged.append((item, problem))
            elif size is None:
                report.absent.append(item)
            else:
                report.files += 1
                report.bytes += size


def copy_files(
    source: Files,
    target: Files,
    handles: Iterable[FileHandle],
    *,
    check: FileCheck | None = None,
    progress: Progress = no_progress,
    label: str = "copying",
) -> Copied[FileHandle]:
    """Copy ``handles`` from ``source`` to ``target``, :data:`CONCURRENCY` at a time,
    each read, checked (once more on failure: a transfer can be cut), then written."""
    report: Copied[FileHandle] = Copied()
    started = time.perf_counter()

    def one(handle: FileHandle) -> Outcome[FileHandle]:
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

    _run_batch(list(dict.fromkeys(handles)), one, report, progress, label)
    report.seconds = time.perf_counter() - started
    return report


def copy_ranges(
    source: Files,
    cuts: Iterable[Cut],
    target_for: Callable[[str], Files],
    *,
    check: FileCheck | None = None,
) -> Copied[Cut]:
    """Read each cut's range of its source file (one ranged request each, concurrently),
    check it as the file it becomes (once more on failure), and write it to
    ``target_for(source file's name)``. A source file that is absent leaves the cut in
    ``absent``; a range that comes back short, fails its check or cannot be read, twice,
    is in ``damaged`` and never kept. Whatever was written is flushed, whatever failed."""
    wanted = list(dict.fromkeys(cuts))
    report: Copied[Cut] = Copied()
    started = time.perf_counter()
    targets = {name: target_for(name) for name in dict.fromkeys(cut.source.name for cut in wanted)}

    def one(cut: Cut) -> Outcome[Cut]:
        problem: str | None = None
        for _ in range(2):
            try:
                data = source.read_range(*cut.source, cut.offset, cut.length)
            except CastoreError as error:  # e.g. a range past the object's end (416)
                problem = str(error)
                continue
            if data is None:
                return cut, None, None
            if len(data) != cut.length:
                problem = f"{cut.source} ends before this frame (truncated?)"
                continue
            problem = None if check is None else check(*cut.target, data)
            if problem is None:
                targets[cut.source.name].write(*cut.target, data, durable=False)
                return cut, len(data), None
        return cut, None, problem

    try:
        _run_batch(wanted, one, report)
    finally:
        for target in targets.values():  # one flush a folder: a kept cut is never torn
            target.sync()
    report.seconds = time.perf_counter() - started
    return report
