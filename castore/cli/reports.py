"""What a command says: a result object that renders as text for people and as JSON for tools.

Every command that reports something builds one :class:`Report` and hands it to
:func:`emit`, so that ``--json`` prints the same facts as the text, and a test can check
the facts without parsing either. A report also says how the command exits (``verify``
with faults, ``diff`` with changes: 1).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Final

import click

EXIT_OK: Final = 0
#: Faults found (verify), changes found (diff), a merge conflict, nothing to show.
EXIT_FAULTS: Final = 1
#: The store cannot be read or written: a castore error.
EXIT_STORE_ERROR: Final = 3


class Report(ABC):
    """One command's result. Subclasses are small dataclasses holding the facts."""

    @abstractmethod
    def to_json(self) -> Any:
        """The facts as JSON-ready data (``--json``)."""

    @abstractmethod
    def text_lines(self) -> Iterator[str]:
        """The facts for a terminal, a line at a time."""

    @property
    def exit_code(self) -> int:
        return EXIT_OK


def emit(report: Report, *, as_json: bool, color: bool | None = None) -> None:
    """Print ``report`` as JSON or as text; exit with its code when that is not 0.

    ``color`` keeps ANSI styles in the text where stdout is no terminal (``--color``);
    by default click drops them there."""
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.text_lines():
            click.echo(line, color=color)
    if report.exit_code != EXIT_OK:
        raise click.exceptions.Exit(report.exit_code)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def human(size: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Rows under a header, each column as wide as its widest cell. ``align`` has an
    ``l`` or ``r`` per column (``r`` for numbers). Trailing blanks are cut."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if side == "r" else cell.ljust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
