"""docs/quickstart.md, run as written, in a fresh project that installs castore as it says.

The page's files (code blocks with a ``title="path"``) are written into a project made by
``uv init``, castore is installed with the page's own ``uv add --dev --editable ../castore``
line (``../castore`` is this checkout), and the page's commands run in order. The
install lines that name the repository's URL or pip are the only ones not run: this
machine has no castore repository to clone, and the uv line already installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = REPO_ROOT / "docs" / "quickstart.md"
FENCE = re.compile(r"^```(\w*)(?: title=\"([^\"]+)\")?\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str | None, str]]:
    return [(m[1], m[2], m[3]) for m in FENCE.finditer(QUICKSTART.read_text())]


def _commands_after(heading: str) -> list[str]:
    """The shell lines of the first bash block under ``## heading``."""
    section = QUICKSTART.read_text().split(f"## {heading}\n", 1)[1]
    block = next(body for lang, _, body in _blocks_of(section) if lang == "bash")
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def _blocks_of(text: str) -> list[tuple[str, str | None, str]]:
    return [(m[1], m[2], m[3]) for m in FENCE.finditer(text)]


def _environment(home: Path) -> dict[str, str]:
    dropped = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "RECORD_FIXTURES", "CI", "PYTHONPATH"}
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    environment.update(
        GIT_AUTHOR_NAME="Quick Start",
        GIT_AUTHOR_EMAIL="quick@example.invalid",
        GIT_COMMITTER_NAME="Quick Start",
        GIT_COMMITTER_EMAIL="quick@example.invalid",
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
    )
    return environment


def _run(command: str, cwd: Path, environment: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_quickstart_runs_as_written_in_a_fresh_project(tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: the quickstart installs castore with uv (see README)")
    (tmp_path / "castore").symlink_to(REPO_ROOT)  # the page's ../castore checkout
    project = tmp_path / "demo"
    project.mkdir()
    environment = _environment(tmp_path)
    _run("git init -q -b main && uv init --no-workspace --name demo -q", project, environment)

    install = [line for line in _commands_after("Install") if line.startswith("uv add")]
    local = [line for line in install if "../castore" in line]
    assert local == ["uv add --dev --editable ../castore"]
    _run(local[0], project, environment)

    files = [(title, body) for _, title, body in _blocks() if title]
    assert [title for title, _ in files] == ["pytest.ini", "tests/integration/test_translate.py"]
    for title, body in files:
        (project / title).parent.mkdir(parents=True, exist_ok=True)
        (project / title).write_text(body)

    (record,) = _commands_after("Record once")
    recorded = _run(record, project, environment)
    assert "0 replayed, 0 missing or stale, 2 recorded" in recorded, recorded
    assert sorted(p.name for p in (project / "tests/fixtures/castore/index").rglob("*.json")) == [
        "test_translate.json"
    ]

    (replay,) = _commands_after("Replay forever")
    replayed = _run(replay, project, environment)
    report = next(body for lang, _, body in _blocks() if "replay only" in body and not lang)
    for line in report.strip().splitlines():
        # The page's figures are an example run's; the time saved varies a little.
        pattern = re.escape(line).replace(re.escape("4.0 s"), r"\d+\.\d s")
        assert re.search(pattern, replayed), f"{line!r} not in:\n{replayed}"
    seconds = float(re.findall(r"([\d.]+) s of real calls avoided", replayed)[0])
    assert seconds >= 4.0  # two recordings of a 2 s call

    for command in _commands_after("Commit"):
        _run(command, project, environment)
    status = _run("git status --porcelain tests/fixtures .gitattributes", project, environment)
    assert status == ""
    committed = _run("git show --name-only --format=%s HEAD", project, environment).split()
    assert committed[:3] == ["Record", "translation", "responses"]
    assert "tests/fixtures/castore/index/tests/integration/test_translate.json" in committed
    blobs = [name for name in committed if name.endswith(".zst")]
    assert len(blobs) == 2
    attributes = _run(f"git check-attr filter diff -- {blobs[0]}", project, environment)
    assert "filter: lfs" in attributes  # blobs go to git-lfs, as `castore git setup` says
