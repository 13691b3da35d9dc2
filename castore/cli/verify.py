"""``castore verify``: every digest, index reference, pack and git-lfs pointer checked by
``castore._upkeep.verify``, reported a fault per line, with pointer files grouped (a
clone without LFS content holds them by design) and the command that downloads them."""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from castore._upkeep import git as _git
from castore._upkeep import verify as store_verify
from castore.cli.app import Settings, json_option, main, progress
from castore.cli.reports import EXIT_FAULTS, EXIT_OK, Report, emit
from castore.errors import CastoreError

#: Pointer files listed one per line before "… and N more".
MAX_POINTERS_SHOWN = 10


@dataclass
class VerifyReport(Report):
    """Faults one per line, except git-lfs pointers: a clone without LFS content holds
    them by design, so they are grouped by file (a pack holds many blobs) and closed by
    the one command that downloads them."""

    result: store_verify.Verification
    strict: bool
    blobs_per_file: Mapping[Path, int]
    """How many blobs each file holds: one for a loose blob, many for a pack."""
    lfs_pull: str | None
    """The command that downloads the store's LFS content, if it is in a git repository."""

    @property
    def exit_code(self) -> int:
        failing = self.result.faults + (self.result.upkeep if self.strict else [])
        return EXIT_FAULTS if failing else EXIT_OK

    @property
    def pointers(self) -> list[store_verify.Fault]:
        """The git-lfs pointer files, once each (verify finds a pack once per blob)."""
        kind = store_verify.FaultKind.LFS_POINTER
        unique = {fault.path: fault for fault in self.result.faults if fault.kind is kind}
        return sorted(unique.values(), key=lambda fault: fault.path)

    @property
    def other_faults(self) -> list[store_verify.Fault]:
        kind = store_verify.FaultKind.LFS_POINTER
        return [fault for fault in self.result.faults if fault.kind is not kind]

    def _blobs_in(self, path: Path) -> int:
        return self.blobs_per_file.get(path, 1)

    def to_json(self) -> dict[str, Any]:
        result = self.result
        pointers = [
            {**fault.to_json(), "blobs": self._blobs_in(fault.path)} for fault in self.pointers
        ]
        return {
            "blobs": result.blobs_total,
            "blobs_checked": result.blobs_checked - self._unchecked(),
            "entries": result.entries,
            "faults": [fault.to_json() for fault in self.other_faults] + pointers,
            "upkeep": [fault.to_json() for fault in result.upkeep],
            "quarantined": [str(path) for path in result.quarantined],
            "lfs_pull": self.lfs_pull if pointers else None,
        }

    def _unchecked(self) -> int:
        return sum(self._blobs_in(fault.path) for fault in self.pointers)

    def text_lines(self) -> Iterator[str]:
        result = self.result
        for fault in self.other_faults:
            yield f"{fault.kind:<12} {fault.path}: {fault.detail}"
        yield from self._pointer_lines()
        for fault in result.upkeep:
            yield f"{fault.kind:<12} {fault.path}: {fault.detail} (upkeep, not a fault)"
        for path in result.quarantined:
            yield f"quarantined  {path}"
        faults = len(self.other_faults) + len(self.pointers)
        upkeep = f"; {len(result.upkeep)} for `castore gc`" if result.upkeep else ""
        unchecked = self._unchecked()
        not_downloaded = f" ({unchecked:,} not downloaded from git-lfs)" if unchecked else ""
        yield (
            f"checked {result.blobs_checked - unchecked:,} of {result.blobs_total:,} blobs"
            f"{not_downloaded} and {result.entries:,} entries: {faults} fault(s){upkeep}"
        )

    def _pointer_lines(self) -> Iterator[str]:
        pointers = self.pointers
        if not pointers:
            return
        for fault in pointers[:MAX_POINTERS_SHOWN]:
            held = self._blobs_in(fault.path)
            blobs = f" holding {held:,} blobs" if held > 1 else ""
            yield f"{fault.kind:<12} {fault.path}: a git-lfs pointer{blobs}, not downloaded"
        if len(pointers) > MAX_POINTERS_SHOWN:
            more = len(pointers) - MAX_POINTERS_SHOWN
            yield f"{'':<12} … and {more:,} more pointer file(s) (--json lists them all)"
        files = "file is a git-lfs pointer" if len(pointers) == 1 else "files are git-lfs pointers"
        yield (
            f"{len(pointers):,} {files} this clone has not downloaded: "
            f"{self._unchecked():,} blob(s) unchecked. Download them with"
        )
        yield f"    {self.lfs_pull or 'git lfs pull'}"
        yield (
            "or leave them: a test run first downloads what its tests need "
            "(castore_lfs_fetch, docs/packs.md)."
        )


def lfs_pull_command(root: Path) -> str | None:
    """``git lfs pull`` of everything under the store, run from the current directory.

    ``--exclude=`` overrides an ``lfs.fetchexclude`` that kept the packs out of the clone
    (an include given alone leaves it in force)."""
    try:
        repo, store_path = _git.store_location(root)
    except CastoreError:
        return None
    include = f"{store_path}/**" if store_path not in ("", ".") else "**"
    try:
        inside = Path.cwd().resolve().is_relative_to(repo.resolve())
    except OSError:
        inside = False
    where = "" if inside else f"-C {shlex.quote(str(repo))} "
    return f'git {where}lfs pull --include="{include}" --exclude=""'


@main.command()
@click.option(
    "--sample",
    type=float,
    help="Check only some blobs' content: a fraction (0.1) or a count (500). "
    "Indexes, references and orphans are always checked in full.",
)
@click.option("--quarantine", is_flag=True, help="Move corrupt blobs to .castore/quarantine/.")
@click.option(
    "--strict", is_flag=True, help="Count orphans and leftover temporary files as faults."
)
@json_option
@click.pass_obj
def verify(
    settings: Settings, sample: float | None, quarantine: bool, strict: bool, as_json: bool
) -> None:
    """Check every digest, every index reference, packs and git-lfs pointers.

    One line per fault; exit code 1 if there is any. Files still git-lfs pointers (a clone
    without LFS content) are one fault each, a pack however many blobs it holds, with the
    `git lfs pull` that downloads them. Orphan blobs and leftover temporary files are
    upkeep for `castore gc`, listed but not faults, unless --strict.
    """
    store = settings.store()
    result = store_verify.verify(store, sample=sample, quarantine=quarantine, progress=progress)
    pointers = [f for f in result.faults if f.kind is store_verify.FaultKind.LFS_POINTER]
    blobs_per_file = Counter(blob.path for blob in store.blobs()) if pointers else Counter()
    lfs_pull = lfs_pull_command(settings.root) if pointers else None
    emit(VerifyReport(result, strict, blobs_per_file, lfs_pull), as_json=as_json)
