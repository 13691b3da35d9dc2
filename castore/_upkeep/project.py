"""Finding the store of the project the ``castore`` command runs in.

The command reads the same setting as the pytest plugin: ``castore_root`` in the pytest
configuration (``pytest.ini``, ``.pytest.ini``, ``pyproject.toml``, ``tox.ini`` or
``setup.cfg``, the first that configures pytest, searching upwards as pytest does),
relative to that file; without it, ``tests/fixtures/castore`` next to it.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

from castore._storage.layout import DEFAULT_ROOT


def _from_ini(path: Path, section: str) -> tuple[bool, str | None]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return False, None
    if not parser.has_section(section):
        return False, None
    return True, parser.get(section, "castore_root", fallback=None)


def _from_pyproject(path: Path) -> tuple[bool, str | None]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False, None
    pytest_table = data.get("tool", {}).get("pytest")
    if not isinstance(pytest_table, dict):
        return False, None
    options = pytest_table.get("ini_options", pytest_table)  # pytest 9 also has [tool.pytest]
    value = options.get("castore_root") if isinstance(options, dict) else None
    return True, None if value is None else str(value)


def pytest_config_root(start: Path) -> tuple[Path, str | None] | None:
    """(directory of the pytest configuration file, its castore_root) or None."""
    for directory in [start, *start.parents]:
        for name in ("pytest.ini", ".pytest.ini"):
            path = directory / name
            if path.is_file():
                return directory, _from_ini(path, "pytest")[1]
        candidates = [
            (directory / "pyproject.toml", _from_pyproject),
            (directory / "tox.ini", lambda p: _from_ini(p, "pytest")),
            (directory / "setup.cfg", lambda p: _from_ini(p, "tool:pytest")),
        ]
        for path, read in candidates:
            if path.is_file():
                found, value = read(path)
                if found:
                    return directory, value
    return None


def default_store_root(cwd: Path | None = None) -> Path:
    start = (cwd or Path.cwd()).resolve()
    found = pytest_config_root(start)
    if found is None:
        return start / DEFAULT_ROOT
    directory, value = found
    return (directory / (value or DEFAULT_ROOT)).resolve()
