"""``castore git``: the repository's attributes and drivers (``setup``), and the two
commands git itself runs, the index diff textconv (``show-index``) and the index merge
driver (``merge-index``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from castore._storage.layout import MAX_INDEX_BYTES
from castore._storage.safe_files import FileRefused, read_user_file
from castore._upkeep import git as _git
from castore._upkeep.lfs_tracking import Renormalization, renormalize_store
from castore.cli.app import CastoreGroup, Settings, StoreProblem, fail, json_option, main
from castore.cli.reports import EXIT_FAULTS, Report, emit
from castore.errors import CastoreError


@main.group(name="git", cls=CastoreGroup)
def git_group() -> None:
    """git integration: attributes, diff driver, index merge driver."""


@dataclass
class SetupSummary(Report):
    report: _git.SetupReport
    undo: bool
    renormalized: Renormalization | None
    """The committed blobs and packs moved into (or out of) git-lfs to match."""

    def to_json(self) -> dict[str, Any]:
        moved = self.renormalized or Renormalization()
        return {
            "repository": str(self.report.repository),
            "attributes": str(self.report.attributes),
            "undo": self.undo,
            "actions": self.report.actions,
            "into_lfs": moved.into_lfs,
            "out_of_lfs": moved.out_of_lfs,
            "still_pointers": moved.pointers,
        }

    def text_lines(self) -> Iterator[str]:
        yield from self.report.actions
        moved = self.renormalized or Renormalization()
        for paths, where in (
            (moved.into_lfs, "into git-lfs"),
            (moved.out_of_lfs, "out of git-lfs"),
        ):
            if paths:
                yield (
                    f"moved {len(paths):,} committed blob and pack file(s) {where} with "
                    "`git add --renormalize`: commit them, with .gitattributes"
                )
        if moved.pointers:
            yield (
                f"left {len(moved.pointers):,} committed blob and pack file(s) in git-lfs: "
                "this clone holds them as pointers only. Run `git lfs pull`, then "
                f"`castore git setup{' --undo' if self.undo else ' --no-lfs'}` again"
            )
        if not self.report.actions and not moved.moved and not moved.pointers:
            yield "nothing to undo" if self.undo else "already set up; nothing changed"


@git_group.command(name="setup")
@click.option("--lfs/--no-lfs", default=True, show_default=True, help="Track blobs with git-lfs.")
@click.option("--remote", metavar="NAME", help="Keep pack data out of git: remote NAME holds it.")
@click.option("--undo", is_flag=True, help="Remove what setup added.")
@json_option
@click.pass_obj
def git_setup(
    settings: Settings, *, lfs: bool, remote: str | None, undo: bool, as_json: bool
) -> None:
    """Configure the repository holding the store (idempotent; --undo reverses it).

    Writes a castore block to .gitattributes (blobs: git-lfs unless --no-lfs, binary,
    shown as JSON by `git diff`; indexes: text, merged by castore) and sets the diff and
    merge drivers in .git/config. Blobs and packs committed before (or under other
    attributes) are re-added to match, with `git add --renormalize`, ready to commit.
    """
    root = settings.root
    report = _git.undo(root) if undo else _git.setup(root, lfs=lfs, remote=remote)
    try:
        repo, store_path = _git.store_location(root)
    except CastoreError:  # a store outside the repository: nothing of it is committed
        renormalized = None
    else:
        renormalized = renormalize_store(repo, store_path)
    emit(SetupSummary(report, undo, renormalized), as_json=as_json)


@git_group.command(name="show-index", hidden=True)
@click.argument("index_file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def git_show_index(settings: Settings, index_file: Path) -> None:
    """git's textconv for index files: each entry with its value, for `git diff`."""
    store = settings.store(must_exist=False)
    try:
        raw = read_user_file(index_file, MAX_INDEX_BYTES)
    except FileRefused as refused:
        raise StoreProblem(f"{index_file}: {refused.reason}") from None
    click.echo(_git.index_with_values(raw, index_file, store.read_blob), nl=False)


@git_group.command(name="merge-index", hidden=True)
@click.argument("base", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("ours", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("theirs", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("name", default="index")
def git_merge_index(base: Path, ours: Path, theirs: Path, name: str) -> None:
    """git's merge driver for index files: castore git merge-index %O %A %B %P."""
    try:
        conflicts = _git.merge_index_files(base, ours, theirs, name)
    except CastoreError as error:
        fail(f"castore: cannot merge {name}: {error}", code=2)
    for conflict in conflicts:
        click.echo(_git.describe_conflict(conflict, name), err=True)
    if conflicts:
        sys.exit(EXIT_FAULTS)
