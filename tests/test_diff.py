"""``castore diff`` in real git repositories: revisions, the working tree, ignore patterns,
output formats, packs, and LFS-tracked blobs read from a real LFS server (giftless)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli, commit_all, git, make_repo, push_to_bare

from bench.lfs_server import giftless
from castore import Recorder, Store

pytestmark = pytest.mark.usefixtures("isolated_git")

NAMESPACE = "tests/test_chat"
IGNORE = ("--ignore", "$..id", "--ignore", "$..created", "--ignore", "$.._request_id")
ANSWERS = {
    "capital": "The capital of France is Paris, a city on the Seine with about two million people.",
    "haiku": "An old silent pond\nA frog jumps into the pond\nSplash! Silence again",
    "sum": "Two plus two is four.",
    "greeting": "Hello! How can I help you today?",
}


def completion(key: str, text: str, run: int) -> dict[str, object]:
    """An openai-shaped answer whose id and created change on every recording."""
    return {
        "id": f"chatcmpl-{run}-{key}",
        "created": 1_700_000_000 + run,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"total_tokens": len(text.split())},
    }


def record(repo: Path, answers: dict[str, str], run: int, *, stream: str | None = None) -> None:
    """Record through a real Recorder (mode all), as a re-recording run does."""
    recorder = Recorder(repo / "recordings", NAMESPACE, mode="all")
    for key, text in answers.items():
        recorder.get_or_record_sync(
            key, lambda key=key, text=text: completion(key, text, run), metadata={"prompt": key}
        )
    if stream is not None:
        words = stream.split(" ")
        chunks = [{"choices": [{"delta": {"content": word + " "}}]} for word in words]
        recorder.get_or_record_sync("stream", lambda: iter(chunks))


def diff(repo: Path, *args: str, code: int | None = None) -> str:
    result = cli("diff", *args, cwd=repo)
    assert result.returncode in (0, 1), result.stderr
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def history(repo: Path) -> Path:
    """Commit 1 records four answers and a stream; commit 2 re-records all of them: two
    answers change in content, two only in ids and timestamps, the stream's text changes."""
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    record(repo, ANSWERS, run=1, stream="one two three")
    commit_all(repo, "record")
    changed = {
        **ANSWERS,
        "capital": ANSWERS["capital"].replace("about two million", "over two million"),
        "haiku": ANSWERS["haiku"].replace("A frog jumps into", "A frog leaps into"),
    }
    record(repo, changed, run=2, stream="one two four")
    commit_all(repo, "re-record")
    return repo


def test_two_revisions_report_exactly_the_changed_keys_with_paths_and_text(
    history: Path,
) -> None:
    report = json.loads(diff(history, "HEAD~1", "HEAD", "--json", code=1))
    (namespace,) = report["namespaces"]
    changed = {entry["key"]: entry for entry in namespace["changed"]}
    # Without ignore patterns every re-recorded answer changed (ids, created).
    assert set(changed) == {"capital", "haiku", "sum", "greeting", "stream"}
    paths = {change["path"] for change in changed["sum"]["changes"]}
    assert paths == {"$.id", "$.created"}
    capital = {change["path"]: change for change in changed["capital"]["changes"]}
    content = capital["$.choices[0].message.content"]
    assert ["-", "about"] in content["text_diff"] and ["+", "over"] in content["text_diff"]
    assert any(change["path"] == "recorded_at" for change in changed["capital"]["metadata"])
    stream = {change["path"]: change for change in changed["stream"]["changes"]}
    assert stream["stream text"]["old"] == "one two three "
    assert stream["stream text"]["new"] == "one two four "
    assert namespace["added"] == [] and namespace["removed"] == []


def test_ignore_patterns_turn_id_only_changes_into_unchanged(history: Path) -> None:
    report = json.loads(diff(history, "HEAD~1", "HEAD", "--json", *IGNORE, code=1))
    (namespace,) = report["namespaces"]
    # Largest share of changed text first: 1 word of 3, of 13, of 16.
    assert [entry["key"] for entry in namespace["changed"]] == ["stream", "haiku", "capital"]
    assert namespace["unchanged"] == 2 and namespace["rerecorded"] == 2
    haiku = namespace["changed"][1]
    assert [change["path"] for change in haiku["changes"]] == ["$.choices[0].message.content"]
    assert 0 < haiku["text_changed"] < 0.2  # one word of twelve

    text = diff(history, "HEAD~1", "HEAD", *IGNORE, code=1)
    assert "  ~ haiku" in text and "  ~ sum" not in text
    assert "A frog [-jumps-]{+leaps+} into the pond" not in text  # a line diff, not words
    assert "- A frog jumps into the pond" in text
    assert "+ A frog leaps into the pond" in text
    assert "[-about-]{+over+}" in text
    assert "3 of 5 answer(s) changed" in text


def test_the_ini_option_sets_the_ignore_patterns_once(history: Path) -> None:
    (history / "pytest.ini").write_text(
        "[pytest]\ncastore_root = recordings\ncastore_diff_ignore =\n    $..id\n    $..created\n"
    )
    stat = diff(history, "HEAD~1", "HEAD", "--stat", code=1)
    assert f" {NAMESPACE} | 3 changed, 0 added, 0 removed, 2 unchanged" in stat


def test_working_tree_forms(history: Path) -> None:
    """No argument: working tree against HEAD. One: that revision against the tree."""
    assert diff(history, code=0).endswith("0 of 5 answer(s) changed, 0 added, 0 removed\n")
    one = json.loads(diff(history, "HEAD~1", "--json", *IGNORE, code=1))
    two = json.loads(diff(history, "HEAD~1", "HEAD", "--json", *IGNORE, code=1))
    assert one["new"] == "working tree"
    assert one["namespaces"] == two["namespaces"]

    record(history, {"greeting": "Bonjour ! Comment puis-je vous aider ?"}, run=3)
    Store(history / "recordings").delete(NAMESPACE, "sum")
    Store(history / "recordings").put(NAMESPACE, "new key", "a new answer")
    report = json.loads(diff(history, "--json", *IGNORE, code=1))
    (namespace,) = report["namespaces"]
    assert [entry["key"] for entry in namespace["changed"]] == ["greeting"]
    assert namespace["added"] == ["new key"] and namespace["removed"] == ["sum"]


def test_markdown_report_for_a_pull_request(history: Path) -> None:
    markdown = diff(history, "HEAD~1", "HEAD", "--markdown", *IGNORE, code=1)
    assert markdown.startswith("## castore diff: `HEAD~1 (")
    assert f"| `{NAMESPACE}` | 3 | 0 | 0 | 2 |" in markdown
    assert "<details>" in markdown and "</details>" in markdown
    assert "  - A frog jumps into the pond" in markdown
    assert "  + A frog leaps into the pond" in markdown


def test_same_blob_is_never_decoded_and_exit_code_zero(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    record(repo, ANSWERS, run=1)
    commit_all(repo, "record")
    git(repo, "commit", "-q", "--allow-empty", "-m", "nothing")
    # Break every blob file in the working tree: a diff of equal digests must not read them.
    for blob in (repo / "recordings" / "blobs").rglob("*.zst"):
        blob.chmod(0o644)
        blob.write_bytes(b"not zstd")
    assert "0 of 4 answer(s) changed" in diff(repo, "HEAD~1", "HEAD", code=0)
    assert "0 of 4 answer(s) changed" in diff(repo, code=0)


def test_packed_blobs_on_both_sides(repo: Path) -> None:
    cli("git", "setup", "--no-lfs", cwd=repo, check=True)
    record(repo, ANSWERS, run=1)
    cli("pack", cwd=repo, check=True)
    commit_all(repo, "packed")
    record(repo, {"sum": "Two plus two makes four."}, run=2)
    cli("pack", cwd=repo, check=True)
    cli("gc", cwd=repo, check=True)
    commit_all(repo, "re-recorded and packed again")
    assert not list((repo / "recordings" / "blobs").rglob("*.zst"))
    report = json.loads(diff(repo, "HEAD~1", "HEAD", "--json", *IGNORE, code=1))
    (entry,) = report["namespaces"][0]["changed"]
    assert entry["key"] == "sum"
    (change,) = entry["changes"]
    assert (change["old"], change["new"]) == ("Two plus two is four.", "Two plus two makes four.")


def test_errors_are_clear(repo: Path, tmp_path: Path) -> None:
    record(repo, ANSWERS, run=1)
    commit_all(repo, "record")
    unknown = cli("diff", "no-such-branch", cwd=repo)
    assert unknown.returncode == 3
    assert "unknown revision 'no-such-branch'" in unknown.stderr
    bad = cli("diff", "--ignore", "(choices", cwd=repo)
    assert bad.returncode == 2 and "must start with '$'" in bad.stderr
    outside = tmp_path / "elsewhere"
    Store(outside).put("ns", "k", "v")
    lost = cli("--root", str(outside), "diff", cwd=repo)
    assert lost.returncode == 3 and "not inside a git repository" in lost.stderr


def test_a_symlink_committed_under_the_store_is_not_followed(repo: Path, tmp_path: Path) -> None:
    record(repo, ANSWERS, run=1)
    commit_all(repo, "record")
    secret = tmp_path / "secret.json"
    secret.write_text('{"castore_index": 1, "namespace": "x", "entries": {}}')
    (repo / "recordings" / "index" / "planted.json").symlink_to(secret)
    commit_all(repo, "plant a symlink")
    report = json.loads(diff(repo, "HEAD~1", "HEAD", "--json", code=0))
    assert [namespace["namespace"] for namespace in report["namespaces"]] == [NAMESPACE]


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
def test_lfs_tracked_blobs_are_read_from_the_lfs_server(repo: Path, tmp_path: Path) -> None:
    """In a clone with no LFS content, both revisions' values come from the LFS server."""
    cli("git", "setup", cwd=repo, check=True)
    with giftless(tmp_path / "lfs-objects") as url:
        (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{url}"\n')
        record(repo, ANSWERS, run=1)
        commit_all(repo, "record")
        record(repo, {"capital": ANSWERS["capital"].replace("Paris", "Lutetia")}, run=2)
        commit_all(repo, "re-record")
        remote = push_to_bare(repo, tmp_path)
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", remote.as_uri(), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        blobs = list((clone / "recordings" / "blobs").rglob("*.zst"))
        assert blobs and all(
            path.read_bytes().startswith(b"version https://git-lfs") for path in blobs
        )
        report = json.loads(diff(clone, "HEAD~1", "HEAD", "--json", *IGNORE, code=1))
    (entry,) = report["namespaces"][0]["changed"]
    assert entry["key"] == "capital"
    (change,) = entry["changes"]
    assert ["+", "Lutetia,"] in change["text_diff"]
    # Nothing was checked out: the clone's files are still pointers.
    assert all(path.read_bytes().startswith(b"version https://git-lfs") for path in blobs)
