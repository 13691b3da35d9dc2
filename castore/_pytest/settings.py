"""Where a session's store is and which mode it runs in: pure decisions over plain inputs.

The session gathers the inputs (command-line options, ini values, the environment) and
these functions decide, so each rule can be read, and tested, on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from castore._recording.modes import Mode
from castore._storage.layout import DEFAULT_ROOT

_TRUE: Final = frozenset({"1", "true", "yes", "on"})


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def resolve_root(
    option: str | None, invocation_dir: Path, ini: str, ini_dir: Path | None, rootpath: Path
) -> Path:
    """--castore-root (relative to where pytest was started), then the ini option
    (relative to the ini file), then ``tests/fixtures/castore`` under the rootdir."""
    if option:
        return (invocation_dir / option).resolve()
    base = ini_dir or rootpath
    return (base / ini).resolve() if ini else rootpath / DEFAULT_ROOT


def decide_mode(
    *,
    option: str | None,
    record_fixtures: str | None,
    marker_mode: str | None,
    ini_mode: str,
    ci: str | None,
) -> Mode:
    """--castore-mode, then RECORD_FIXTURES=true, then the marker, then the ini option.

    On CI (``CI`` set), a recording mode that comes only from a marker or the ini file is
    ignored: CI replays, and a missing recording fails the build instead of silently
    calling the real API. The command line and RECORD_FIXTURES still rule.
    """
    if option:
        return Mode.parse(option)
    if truthy(record_fixtures):
        return Mode.ALL
    mode = Mode.parse(marker_mode or ini_mode or Mode.NONE)
    if mode.records and truthy(ci):
        return Mode.NONE
    return mode


def module_namespace(path: Path, rootpath: Path) -> str:
    """``<rootdir>/tests/integration/test_ir.py`` -> ``tests/integration/test_ir``.

    A test module below the rootdir, named as a Python module is, takes string slicing
    (a tenth of pathlib's cost, once per module of a session); anything else, pathlib."""
    text, root = str(path), str(rootpath)
    if os.sep == "/" and text.endswith(".py") and text.startswith(root + "/"):
        relative = text[len(root) + 1 : -3]
        if relative.rpartition("/")[2].isidentifier():
            return relative
    try:
        return path.relative_to(rootpath).with_suffix("").as_posix()
    except ValueError:
        return path.stem
