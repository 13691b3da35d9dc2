"""The remote tier's commands, run as users run them (``castore`` in a subprocess), on
moto's S3 API on loopback: remote add, git setup --remote, push, pull, gc --remote,
their ``--json``, their progress bars on a terminal, and canary credentials that must
never reach a file castore writes."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    CommandResult,
    cli,
    commit_all,
    git,
    push_to_bare,
    recorded_project,
    use_git_home,
)

from castore import Store
from castore._storage.store import internals

pytestmark = pytest.mark.usefixtures("isolated_git")

MODULES = 4
KEYS = 30
CANARY_KEY = "AKIACANARY0CANARY0CA"
CANARY_SECRET = "canary-secret-7f3a9e1c"
CANARY_TOKEN = "canary-token-55aa"


def castore(cwd: Path, *args: str, check: bool = True) -> CommandResult:
    """``castore ARGS`` in ``cwd``, in this process (click's runner: the command's own
    parsing, output and exit codes); the progress-bar test runs the real command."""
    return cli(*args, cwd=cwd, check=check)


def answer(module: int, key: int) -> dict[str, object]:
    noise = " ".join(f"w{(module * 31 + key * 7 + n) % 997}" for n in range(300))
    return {"module": module, "key": key, "text": noise}


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, ...]:
    """Canary credentials: moto accepts any, so every command below signs with them."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "CASTORE_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CANARY_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CANARY_TOKEN)
    return CANARY_KEY, CANARY_SECRET, CANARY_TOKEN


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, git_home: Path) -> Path:
    """A :func:`recorded_project` repository packed by ``castore pack``, made once per
    module (per xdist worker), with the canaries in the environment as in the tests:
    :func:`repo` starts from a copy of it rather than recording and packing again."""
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        for name, value in zip(
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
            (CANARY_KEY, CANARY_SECRET, CANARY_TOKEN),
            strict=True,
        ):
            patch.setenv(name, value)
        repo = tmp_path_factory.mktemp("recorded") / "repo"
        recorded_project(repo, MODULES, KEYS, answer)
        castore(repo, "pack", "--target-size", "16KiB")
    return repo


@pytest.fixture
def repo(
    recorded: Path, tmp_path: Path, s3_server: str, s3_bucket: str, canaries: tuple[str, ...]
) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(recorded, repo, symlinks=True)
    url = f"s3://{s3_bucket}/recordings"
    added = json.loads(
        castore(repo, "remote", "add", "origin", url, "--endpoint", s3_server, "--json").stdout
    )
    assert added == {
        "default": "origin",
        "remotes": {"origin": {"url": url, "endpoint": s3_server}},
    }
    assert (
        "pack data out of git"
        not in castore(repo, "git", "setup", "--no-lfs", "--remote", "origin").stdout
    )
    return repo


def test_push_clone_replay_pull_and_gc_from_the_command_line(
    repo: Path, tmp_path: Path, session_in: Callable[..., CommandResult]
) -> None:
    pushed = json.loads(castore(repo, "push", "--json").stdout)
    assert pushed["objects"] == pushed["wanted"] > 0 and pushed["already"] == 0
    again = castore(repo, "push").stdout
    assert re.search(r"pushed 0 object\(s\) .* to remote origin", again), again
    commit_all(repo, "recordings")
    bare = push_to_bare(repo, tmp_path)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", bare.as_uri(), str(clone))
    assert not list((clone / "recordings" / "packs").glob("*.pack"))
    run = session_in(clone, "tests/test_m2.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"fetched \d+ objects \([0-9.]+ MB\) from remote origin in", run.stdout)

    store = Store(clone / "recordings")
    packs = internals(store).blobs.packs
    needed = {packs.pack_of(entry.blob) for entry in store.entries("tests/test_m3").values()}
    present = {path.stem for path in (clone / "recordings" / "packs").glob("*.pack")}
    pulled = json.loads(castore(clone, "pull", "tests/test_m3.py", "--json").stdout)
    assert pulled["objects"] == len(needed - present)
    assert needed <= {path.stem for path in (clone / "recordings" / "packs").glob("*.pack")}
    everything = castore(clone, "pull").stdout
    assert "pulled" in everything and "from remote origin" in everything
    assert castore(clone, "verify").returncode == 0

    listed = json.loads(castore(repo, "remote", "list", "--json").stdout)
    assert listed["default"] == "origin"
    dry = json.loads(
        castore(repo, "gc", "--remote", "origin", "--grace", "0", "--dry-run", "--json").stdout
    )
    assert dry["deleted"] == [] and dry["kept"] == dry["objects"] > 0
    bad = castore(repo, "pull", "tests/test_nothing.py", check=False)
    assert bad.returncode == 3 and "names no namespace" in bad.stderr


def test_no_credential_reaches_any_file(
    repo: Path,
    tmp_path: Path,
    canaries: tuple[str, ...],
    session_in: Callable[..., CommandResult],
) -> None:
    """Canary credentials in the environment through remote add, push, a replay that
    fetches, pull and remote gc: no file of the repository, a clone or a folder remote
    holds them (castore.json names URLs and options only)."""
    castore(repo, "remote", "add", "shelf", (tmp_path / "shelf").as_uri())
    castore(repo, "push")
    castore(repo, "push", "--remote", "shelf")
    commit_all(repo, "recordings")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", repo.as_uri(), str(clone))
    assert session_in(clone, "tests/test_m1.py").returncode == 0
    castore(clone, "pull")
    castore(repo, "gc", "--remote", "origin", "--grace", "0")
    document = json.loads((repo / "recordings" / "castore.json").read_text())
    assert set(document["remotes"]["origin"]) == {"url", "endpoint"}
    scanned = 0
    for folder in (repo, clone, tmp_path / "shelf", tmp_path / "home"):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                scanned += 1
                for canary in canaries:
                    assert canary.encode() not in content, path
    assert scanned > 50


def test_push_and_pull_show_progress_bars_on_a_terminal(repo: Path) -> None:
    """stderr on a terminal (a pty): the bar and its label are drawn."""
    parent, child = pty.openpty()
    run = subprocess.run(
        [sys.executable, "-m", "castore", "push"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=child,
        text=True,
        check=False,
        timeout=300,
    )
    os.close(child)
    drawn = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(parent)
    assert run.returncode == 0, run.stdout
    assert b"pushing" in drawn and b"100%" in drawn
