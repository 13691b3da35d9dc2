"""docs/quickstart.md, run as written, in a fresh project that installs castore as it says.

The page's files (code blocks with a ``title="path"``) are written into a project made by
``uv init``, castore is installed from a wheel with the page's own two lines (``uv build``
of ``../castore``, this checkout, then ``uv add`` of the wheel), and the page's commands
run in order. Where CI built the wheel first (``.ci/run`` sets ``CASTORE_WHEEL``), the
page's wheel must be that very file, byte for byte.

The other install lines run in a second fresh project: the git URL line against this
repository (``file://``, at HEAD) and the ``--editable ../castore`` line, whose relative
path the page warns about. Only the pip lines are not run: the uv lines install the same
things.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DOCS, REPO_ROOT, markdown_blocks

import castore

QUICKSTART = DOCS / "quickstart.md"


def _blocks() -> list[tuple[str, str | None, str]]:
    return _blocks_of(QUICKSTART.read_text())


def _commands_after(heading: str, *, every_block: bool = False) -> list[str]:
    """The shell lines of the first bash block under ``## heading`` (or of every bash
    block in that section)."""
    section = QUICKSTART.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [body for lang, _, body in _blocks_of(section) if lang == "bash"]
    lines = [
        line.split("  #")[0].strip()
        for block in (blocks if every_block else blocks[:1])
        for line in block.splitlines()
    ]
    return [line for line in lines if line]


def _blocks_of(text: str) -> list[tuple[str, str | None, str]]:
    return [(block.lang, block.title, block.body) for block in markdown_blocks(text)]


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


def _fresh_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """``demo/`` made by ``uv init`` in a git repository, with ``../castore`` this checkout."""
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: the quickstart installs castore with uv (see README)")
    (tmp_path / "castore").symlink_to(REPO_ROOT)  # the page's ../castore checkout
    project = tmp_path / "demo"
    project.mkdir()
    environment = _environment(tmp_path)
    _run("git init -q -b main && uv init --no-workspace --name demo -q", project, environment)
    return project, environment


def test_the_quickstart_runs_as_written_in_a_fresh_project(tmp_path: Path) -> None:
    project, environment = _fresh_project(tmp_path)

    install = _commands_after("Install", every_block=True)
    from_wheel = [line for line in install if "wheels" in line and not line.startswith("pip")]
    assert from_wheel == [
        "uv build --wheel --out-dir wheels ../castore",
        f"uv add --dev ./wheels/castore-{castore.__version__}-py3-none-any.whl",
    ]
    for line in from_wheel:
        _run(line, project, environment)
    (wheel,) = (project / "wheels").glob("*.whl")
    built_by_ci = os.environ.get("CASTORE_WHEEL")
    if built_by_ci:
        assert wheel.read_bytes() == Path(built_by_ci).read_bytes(), built_by_ci
    version = _run("uv run castore --version", project, environment)
    assert version == f"castore, version {castore.__version__}\n"
    location = _run(
        "uv run python -c 'import castore; print(castore.__file__)'", project, environment
    )
    assert location.startswith(str(project / ".venv")), location  # the wheel, not this tree

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


def test_the_git_url_and_checkout_install_lines_work_and_the_checkout_one_is_relative(
    tmp_path: Path,
) -> None:
    """The page's git URL line (pointed at this repository, at HEAD) installs castore;
    its ``--editable ../castore`` line writes a path relative to the project, so a clone
    at another depth fails ``uv sync``, as the page warns."""
    project, environment = _fresh_project(tmp_path)
    install = _commands_after("Install", every_block=True)
    (from_git,) = [line for line in install if "git+https" in line]
    tag = f"@v{castore.__version__}"
    assert from_git.endswith(f'{tag}"'), (from_git, "the page's tag is not this version")
    head = _run("git rev-parse HEAD", REPO_ROOT, environment).strip()
    here = from_git.replace("https://github.com/<owner>/castore", REPO_ROOT.as_uri())
    _run(here.replace(tag, f"@{head}"), project, environment)
    assert _run("uv run castore --version", project, environment).startswith("castore, version")

    (editable,) = [line for line in install if "--editable" in line and line.startswith("uv")]
    _run(editable, project, environment)

    pyproject = (project / "pyproject.toml").read_text()
    assert 'castore = { path = "../castore", editable = true }' in pyproject
    assert _run("uv run castore --version", project, environment).startswith("castore, version")
    deeper = tmp_path / "elsewhere" / "deeper"
    deeper.mkdir(parents=True)
    shutil.copytree(project, deeper / "demo", ignore=shutil.ignore_patterns(".venv"))
    moved = subprocess.run(
        ["uv", "sync"],
        cwd=deeper / "demo",
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert moved.returncode != 0
    assert "castore" in moved.stderr
