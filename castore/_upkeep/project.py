"""Finding the store of the project the ``castore`` command runs in.

The command reads the same setting as the pytest plugin: ``castore_root`` in the pytest
configuration (``pytest.ini``, ``.pytest.ini``, ``pyproject.toml``, ``tox.ini`` or
``setup.cfg``, the first that configures pytest, searching upwards as pytest does),
relative to that file; without it, ``tests/fixtures/castore`` next to it. Other castore
options the commands read there (``castore_diff_ignore``) come from the same file.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

from castore._storage.layout import DEFAULT_ROOT


def _from_ini(path: Path, section: str) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None
    if not parser.has_section(section):
        return None
    return dict(parser.items(section))


def _from_pyproject(path: Path) -> dict[str, str] | None:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    pytest_table = data.get("tool", {}).get("pytest")
    if not isinstance(pytest_table, dict):
        return None
    options = pytest_table.get("ini_options", pytest_table)  # pytest 9 also has [tool.pytest]
    if not isinstance(options, dict):
        return {}
    return {
        name: "\n".join(map(str, value)) if isinstance(value, list) else str(value)
        for name, value in options.items()
    }


def pytest_config(start: Path) -> tuple[Path, dict[str, str]] | None:
    """(directory of the pytest configuration file, its options) or None. A list in
    pyproject.toml reads as lines, as pytest's ``linelist`` options do."""
    for directory in [start, *start.parents]:
        for name in ("pytest.ini", ".pytest.ini"):
            path = directory / name
            if path.is_file():
                return directory, _from_ini(path, "pytest") or {}
        candidates = [
            (directory / "pyproject.toml", _from_pyproject),
            (directory / "tox.ini", lambda p: _from_ini(p, "pytest")),
            (directory / "setup.cfg", lambda p: _from_ini(p, "tool:pytest")),
        ]
        for path, read in candidates:
            if path.is_file():
                options = read(path)
                if options is not None:
                    return directory, options
    return None


def pytest_config_root(start: Path) -> tuple[Path, str | None] | None:
    """(directory of the pytest configuration file, its castore_root) or None."""
    found = pytest_config(start)
    if found is None:
        return None
    directory, options = found
    return directory, options.get("castore_root")


def config_lines(name: str, cwd: Path | None = None) -> list[str]:
    """A line-list option (``castore_diff_ignore``) from the project's pytest configuration."""
    found = pytest_config((cwd or Path.cwd()).resolve())
    if found is None:
        return []
    return [line.strip() for line in found[1].get(name, "").splitlines() if line.strip()]


def default_store_root(cwd: Path | None = None) -> Path:
    start = (cwd or Path.cwd()).resolve()
    found = pytest_config_root(start)
    if found is None:
        return start / DEFAULT_ROOT
    directory, value = found
    return (directory / (value or DEFAULT_ROOT)).resolve()
