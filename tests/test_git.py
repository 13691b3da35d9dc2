"""Real git and git-lfs: attributes, readable diffs, index merges, LFS clone and pull."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CommandResult, cli, commit_all, git, make_repo, needs_lfs, push_to_bare

from castore import Store

pytestmark = pytest.mark.usefixtures("isolated_git")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_setup_is_idempotent_and_undo_takes_it_all_back(repo: Path) -> None:
    (repo / ".gitattributes").write_text("*.png binary\n")
    Store(repo / "recordings").put("ns", "k", "v")

    first = cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    attributes = (repo / ".gitattributes").read_text()
    config = git(repo, "config", "--local", "--list").stdout
    second = cli("git", "setup", "--no-lfs", cwd=repo, check=True)

    assert "wrote the castore block" in first.stdout
    assert "already set up" in second.stdout
    assert (repo / ".gitattributes").read_text() == attributes
    assert git(repo, "config", "--local", "--list").stdout == config
    assert attributes.startswith("*.png binary\n")
    blob_attributes = git(repo, "check-attr", "-a", "recordings/blobs/ab/ab12.zst").stdout
    assert "diff: castore" in blob_attributes and "merge: unset" in blob_attributes
    assert "filter: lfs" not in blob_attributes
    index_attributes = git(repo, "check-attr", "merge", "recordings/index/tests/x.json").stdout
    assert "merge: castore-index" in index_attributes
    assert "castore cat" in git(repo, "config", "diff.castore.textconv").stdout

    cli("git", "setup", "--undo", cwd=repo, check=True)

    assert (repo / ".gitattributes").read_text() == "*.png binary\n"
    assert "castore" not in git(repo, "config", "--local", "--list").stdout


def answer(text: str) -> dict[str, object]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def diff_lines(diff: str, sign: str) -> list[str]:
    """The added (+) or removed (-) lines of a diff, without the sign and indentation."""
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith(sign) and not line.startswith(sign * 3)
    ]


def test_git_diff_of_a_re_recorded_blob_shows_readable_json(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    Store(repo / "recordings").put("tests/test_x", "find_index", answer("first answer"))
    commit_all(repo, "record")

    Store(repo / "recordings").put("tests/test_x", "find_index", answer("second answer"))
    cli("gc", cwd=repo, check=True)  # the first answer's blob is now unreferenced
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached").stdout

    assert '"content": "second answer"' in diff_lines(diff, "+")
    assert '"content": "first answer"' in diff_lines(diff, "-")
    assert "Binary files" not in diff
    commit_all(repo, "re-record")
    log = git(repo, "log", "-p", "-1").stdout
    assert '"content": "second answer"' in diff_lines(log, "+")


def record_keys(repo: Path, *keys: str) -> None:
    store = Store(repo / "recordings")
    for key in keys:
        store.put("tests/test_x", key, answer(f"answer for {key}"))


def test_two_branches_that_record_new_keys_merge_without_conflict(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    record_keys(repo, "k1", "k5")
    commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    record_keys(repo, "k2")  # inserted right after k1 ...
    commit_all(repo, "feature records k2")
    git(repo, "checkout", "-q", "main")
    record_keys(repo, "k3")  # ... and so is this: a textual conflict for plain git
    commit_all(repo, "main records k3")

    # Control: without castore's merge driver, git's line merge conflicts here.
    plain = repo.parent / "plain"
    git(repo.parent, "clone", "-q", str(repo), str(plain))
    git(plain, "fetch", "-q", "origin", "feature:feature")
    assert git(plain, "merge", "feature", "--no-edit", check=False).returncode != 0

    merge = git(repo, "merge", "feature", "--no-edit", check=False)

    assert merge.returncode == 0, merge.stdout + merge.stderr
    store = Store(repo / "recordings")
    assert sorted(store.entries("tests/test_x")) == ["k1", "k2", "k3", "k5"]
    for key in ("k1", "k2", "k3", "k5"):
        assert store.get("tests/test_x", key) == answer(f"answer for {key}")
    assert cli("verify", cwd=repo).returncode == 0


def test_the_same_key_recorded_differently_on_two_branches_is_a_clear_conflict(
    repo: Path,
) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    record_keys(repo, "k1")
    commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    Store(repo / "recordings").put("tests/test_x", "shared", answer("theirs"))
    commit_all(repo, "feature")
    git(repo, "checkout", "-q", "main")
    Store(repo / "recordings").put("tests/test_x", "shared", answer("ours"))
    commit_all(repo, "main")

    merge = git(repo, "merge", "feature", "--no-edit", check=False)

    assert merge.returncode != 0
    output = merge.stdout + merge.stderr
    assert "castore: conflict in recordings/index/tests/test_x.json: key 'shared'" in output
    assert "Kept ours" in output
    index = json.loads((repo / "recordings" / "index" / "tests" / "test_x.json").read_text())
    assert set(index["entries"]) == {"k1", "shared"}  # still valid JSON, no conflict markers
    assert Store(repo / "recordings").get("tests/test_x", "shared") == answer("ours")


SUITE = """
import os

def call(prompt):
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    return {"choices": [{"message": {"content": f"answer to {prompt}"}}]}

def test_find_index(recorder):
    assert recorder.get_or_record_sync("find_index", lambda: call("find index"))

def test_factorial(recorder):
    assert recorder.get_or_record_sync("factorial", lambda: call("factorial"))
"""


@needs_lfs
def test_an_lfs_tracked_store_clones_pulls_and_replays_and_fails_clearly_unpulled(
    tmp_path: Path, repo: Path, session_in: Callable[..., CommandResult]
) -> None:
    (repo / "tests").mkdir()
    (repo / "tests" / "test_llm.py").write_text(SUITE)
    recorded = session_in(repo, "--castore-mode=new_episodes", env={"CASTORE_LIVE": "1"})
    assert recorded.returncode == 0, recorded.stdout
    cli("git", "setup", cwd=repo, check=True)  # with LFS
    commit_all(repo, "record with LFS")
    tracked = git(repo, "lfs", "ls-files", "--name-only").stdout.split()
    assert len(tracked) == 2 and all(name.startswith("recordings/blobs/") for name in tracked)
    remote = push_to_bare(repo, tmp_path)
    assert (
        len(list((remote / "lfs" / "objects").rglob("*"))) > 2
    )  # objects went to the file:// remote

    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(lazy), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    fetched = session_in(lazy)  # lazy fetch: no `git lfs pull` needed first
    assert fetched.returncode == 0, fetched.stdout
    assert re.search(r"fetched 2 objects \([0-9.]+ MB\) from LFS in [0-9.]+ s", fetched.stdout)
    assert "2 replayed, 0 missing or stale, 0 recorded" in fetched.stdout
    again = session_in(lazy)
    assert "from LFS" not in again.stdout  # fetched once: the next run has them

    unpulled = tmp_path / "unpulled"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(unpulled), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    failing = session_in(unpulled, "-o", "castore_lfs_fetch=false")
    assert failing.returncode == 1
    assert "is a git-lfs pointer file, not the recorded data" in failing.stdout
    assert "git lfs pull" in failing.stdout
    verify = cli("verify", cwd=unpulled)
    assert verify.returncode == 1 and verify.stdout.count("lfs-pointer") == 2

    shutil.rmtree(remote / "lfs")  # the server lost the objects: a clear report, no crash
    lost = session_in(unpulled)
    assert lost.returncode == 1
    assert "could not fetch 2 of 2 object(s) from LFS" in lost.stdout
    assert "is a git-lfs pointer file, not the recorded data" in lost.stdout

    git(repo, "push", "-q", "origin", "main")
    git(repo, "lfs", "push", "--all", "origin")
    git(unpulled, "lfs", "pull")
    replay = session_in(unpulled)
    assert replay.returncode == 0, replay.stdout
    assert "2 replayed, 0 missing or stale, 0 recorded" in replay.stdout

    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(fresh))
    assert session_in(fresh).returncode == 0


@needs_lfs
def test_git_diff_shows_lfs_tracked_blobs_as_json(repo: Path) -> None:
    cli("git", "setup", cwd=repo, check=True)
    Store(repo / "recordings").put("tests/test_x", "find_index", answer("first answer"))
    commit_all(repo, "record")
    Store(repo / "recordings").put("tests/test_x", "find_index", answer("second answer"))
    git(repo, "add", "-A")

    diff = git(repo, "diff", "--cached").stdout

    assert '"content": "second answer"' in diff_lines(diff, "+")
    assert "oid sha256" not in diff  # the content, not the LFS pointer


def test_git_diff_of_an_index_shows_the_values_that_changed_not_only_digests(
    repo: Path,
) -> None:
    """Issue 14 (and 15's git integration): a re-recording showed in `git diff` as a
    changed digest; the index diff driver shows the old and the new answer."""
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    store = Store(repo / "recordings")
    store.put("tests/test_x", "find_index", answer("first answer"))
    store.put("tests/test_x", "unchanged", answer("stays the same"))
    commit_all(repo, "record")
    Store(repo / "recordings").put("tests/test_x", "find_index", answer("second answer"))

    diff = git(repo, "diff", "--", "recordings/index").stdout
    added, removed = diff_lines(diff, "+"), diff_lines(diff, "-")
    assert '"content": "second answer"' in added
    assert '"content": "first answer"' in removed  # the old blob is still in the checkout
    assert "stays the same" not in added + removed
    assert "find_index  [blob" in diff


def test_the_index_diff_says_so_when_an_old_value_is_not_in_the_checkout(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    Store(repo / "recordings").put("tests/test_x", "k", answer("first answer"))
    commit_all(repo, "record")
    Store(repo / "recordings").put("tests/test_x", "k", answer("second answer"))
    cli("gc", cwd=repo, check=True)  # the first answer's blob is gone from the working tree
    diff = git(repo, "diff", "--", "recordings/index").stdout
    assert "(value not available here: MissingBlobError)" in diff_lines(diff, "-")
    assert '"content": "second answer"' in diff_lines(diff, "+")


def test_the_index_diff_reads_values_from_packs_too(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    store = Store(repo / "recordings")
    for number in range(20):  # enough values for the first pack to train a dictionary
        store.put("tests/test_x", f"k{number}", answer(f"answer {number}"))
    cli("pack", cwd=repo, check=True)
    commit_all(repo, "record and pack")
    Store(repo / "recordings").put("tests/test_x", "k3", answer("re-recorded answer"))
    diff = git(repo, "diff", "--", "recordings/index").stdout
    assert '"content": "answer 3"' in diff_lines(diff, "-")  # read from the pack
    assert '"content": "re-recorded answer"' in diff_lines(diff, "+")  # loose, new


def lfs_files(repo: Path) -> list[str]:
    return sorted(git(repo, "lfs", "ls-files", "--name-only").stdout.split())


def is_pointer(path: Path) -> bool:
    return path.read_bytes().startswith(b"version https://git-lfs.github.com/spec/")


@needs_lfs
def test_setup_after_the_store_was_committed_moves_its_blobs_and_packs_into_lfs(
    tmp_path: Path, repo: Path
) -> None:
    """Issue 27, item 2: docs/migrating.md commits the store, then runs `castore git
    setup`; the committed blobs and packs stayed plain git objects (`git lfs ls-files`
    empty). setup re-adds them under the new attributes, and says so; --undo (and
    --no-lfs) moves them back, except files this clone holds only as pointers."""
    store = Store(repo / "recordings")
    for number in range(20):
        store.put("tests/test_x", f"k{number}", answer(f"answer {number}"))
    cli("pack", cwd=repo, check=True)
    store.put("tests/test_x", "loose", answer("recorded after packing"))
    commit_all(repo, "record, in plain git")
    blobs_and_packs = sorted(
        path.relative_to(repo).as_posix()
        for path in [
            *(repo / "recordings" / "blobs").rglob("*.zst"),
            *(repo / "recordings" / "packs").glob("*.pack"),
        ]
    )
    assert len(blobs_and_packs) == 3  # the pack, its dictionary, a loose blob
    assert lfs_files(repo) == []

    setup = cli("git", "setup", cwd=repo, check=True)

    assert (
        "moved 3 committed blob and pack file(s) into git-lfs with `git add --renormalize`: "
        "commit them, with .gitattributes"
    ) in setup.stdout
    commit_all(repo, "castore git setup")
    assert lfs_files(repo) == blobs_and_packs
    assert git(repo, "status", "--porcelain").stdout == ""
    again = cli("git", "setup", cwd=repo, check=True)
    assert again.stdout == "already set up; nothing changed\n"
    remote = push_to_bare(repo, tmp_path)
    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(lazy), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert all(is_pointer(lazy / name) for name in blobs_and_packs)  # LFS holds them

    stuck = cli("git", "setup", "--undo", cwd=lazy, check=True)
    assert "left 3 committed blob and pack file(s) in git-lfs" in stuck.stdout
    assert "Run `git lfs pull`, then `castore git setup --undo` again" in stuck.stdout
    assert git(lazy, "diff", "--cached", "--name-only").stdout == ""  # nothing staged

    undone = cli("git", "setup", "--undo", "--json", cwd=repo, check=True)

    assert json.loads(undone.stdout)["out_of_lfs"] == blobs_and_packs
    commit_all(repo, "castore git setup --undo")
    assert lfs_files(repo) == []
    git(repo, "push", "-q", "origin", "main")
    plain = tmp_path / "plain"
    git(tmp_path, "clone", "-q", remote.as_uri(), str(plain), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert not any(is_pointer(plain / name) for name in blobs_and_packs)
    assert Store(plain / "recordings").get("tests/test_x", "k7") == answer("answer 7")
