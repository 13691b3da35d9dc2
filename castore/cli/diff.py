"""``castore diff``: how the recorded answers changed between two revisions. Comparing is
``castore._upkeep.store_diff``'s job, rendering ``diff_report``'s; this module picks the
two sides and the format."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import click

from castore._recording.json_paths import PatternError, parse_pattern
from castore._recording.volatile import Volatility
from castore._storage.store import Store
from castore._upkeep import diff_report
from castore._upkeep import git as _git
from castore._upkeep.project import config_lines
from castore._upkeep.revisions import WorkingTreeStore, revision_store
from castore._upkeep.store_diff import StoreDiff, StoreSide, diff_stores
from castore.cli.app import Settings, json_option, main, namespace_name
from castore.cli.reports import EXIT_FAULTS, EXIT_OK, Report, emit

_DIFF_COLOURS = {"removed": "red", "added": "green", "heading": None, "dim": None}


def _diff_style(text: str, role: str) -> str:
    return click.style(text, fg=_DIFF_COLOURS.get(role), bold=role == "heading", dim=role == "dim")


@dataclass
class DiffSummary(Report):
    """The comparison, in the text form chosen (word-diff text, ``--stat``, Markdown);
    changes exit 1, as ``git diff --exit-code`` does."""

    diff: StoreDiff
    form: Literal["text", "stat", "markdown"] = "text"
    color: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_FAULTS if self.diff.has_changes else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return diff_report.render_json(self.diff)

    def text_lines(self) -> Iterator[str]:
        if self.form == "markdown":
            text = diff_report.render_markdown(self.diff)
        elif self.form == "stat":
            text = diff_report.render_stat(self.diff)
        else:
            style = _diff_style if self.color else diff_report.plain_style
            text = diff_report.render_text(self.diff, style)
        yield from text.splitlines()


@main.command()
@click.argument("revisions", nargs=-1, metavar="[REV_A [REV_B]]")
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="PATTERN",
    help="A JSON path whose changes do not count, e.g. '$..id' (repeatable; adds to the "
    "ini option castore_diff_ignore).",
)
@click.option(
    "--all-parts",
    is_flag=True,
    help="Count changes to the parts that change on every call too (dates, request ids, "
    "per-call ids: castore's volatile parts and the ini's castore_volatile).",
)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Only this namespace.")
@click.option("--stat", is_flag=True, help="One line per namespace.")
@json_option
@click.option("--markdown", is_flag=True, help="A Markdown report, e.g. for a pull request.")
@click.option(
    "--color/--no-color", default=None, help="Colour the text report (default: on a terminal)."
)
@click.pass_obj
def diff(
    settings: Settings,
    *,
    revisions: tuple[str, ...],
    ignore: tuple[str, ...],
    namespaces: tuple[str, ...],
    all_parts: bool,
    stat: bool,
    as_json: bool,
    markdown: bool,
    color: bool | None,
) -> None:
    """Show how the recorded answers changed between two revisions.

    With no REV, the working tree against HEAD; with one, that revision against the
    working tree; with two, REV_A against REV_B. Revisions are read from git's objects
    (and git-lfs), so nothing is checked out. An answer that changed only in parts that
    change on every call (dates, request ids, per-call ids) is unchanged, unless
    --all-parts. A castore_http request that changed shows as one "request changed"
    entry: the request's diff, then its answer's. Exit code 0 when nothing changed, 1 when
    something did (as `git diff --exit-code`).
    """
    if len(revisions) > 2:
        raise click.UsageError("give at most two revisions: castore diff [REV_A [REV_B]]")
    if sum([stat, as_json, markdown]) > 1:
        raise click.UsageError("choose one of --stat, --json and --markdown")
    patterns = [*config_lines("castore_diff_ignore"), *ignore]
    try:
        parsed = [parse_pattern(pattern) for pattern in dict.fromkeys(patterns)]
        volatility = None if all_parts else Volatility(config_lines("castore_volatile"))
    except PatternError as error:
        raise click.UsageError(str(error)) from None
    root = settings.root
    repo, store_path = _git.store_location(root)
    old_revision = revisions[0] if revisions else "HEAD"
    new_revision = revisions[1] if len(revisions) == 2 else None  # None: the working tree
    with contextlib.ExitStack() as stack:
        old = stack.enter_context(revision_store(repo, old_revision, store_path))
        if new_revision is None:
            new: StoreSide = WorkingTreeStore(Store(root) if root.is_dir() else None)
        else:
            new = stack.enter_context(revision_store(repo, new_revision, store_path))
        only = [namespace_name(name) for name in namespaces] or None
        result = diff_stores(old, new, parsed, namespaces=only, volatility=volatility)
    use_color = sys.stdout.isatty() if color is None else color
    form: Literal["text", "stat", "markdown"] = (
        "markdown" if markdown else "stat" if stat else "text"
    )
    emit(DiffSummary(result, form, use_color), as_json=as_json, color=use_color)
