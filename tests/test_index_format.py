"""The index file is written for git: stable, sorted, one line per entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import commit_all, git

from castore import Store
from castore._storage.store import internals


def test_index_is_sorted_json_with_one_entry_per_line_and_a_version_on_top(store: Store) -> None:
    for key in ("zeta", "alpha", "mid"):
        store.put("ns", key, {"k": key}, metadata={"prompt": "multi\nline"})

    text = internals(store).indexes.path("ns").read_text()
    document = json.loads(text)

    assert text.splitlines()[1] == '  "castore_index": 1,'
    assert list(document["entries"]) == ["alpha", "mid", "zeta"]
    entry_lines = [line for line in text.splitlines() if line.startswith('    "')]
    assert len(entry_lines) == 3
    assert text.endswith("}\n")


def test_rewriting_an_unchanged_index_gives_the_same_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for number in range(20):
        store.put("ns", f"key-{number}", number)
    before = internals(store).indexes.path("ns").read_bytes()

    fresh = Store(tmp_path)
    entry = fresh.entry("ns", "key-3")
    assert entry is not None
    internals(fresh).writer.put_entry("ns", "key-3", entry, b"\x03")  # same entry again

    assert internals(fresh).indexes.path("ns").read_bytes() == before


@pytest.mark.usefixtures("isolated_git")
def test_re_recording_one_key_of_1000_changes_one_line_of_the_index(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    store = Store(repo / "fixtures")
    with store.batch():
        for number in range(1000):
            store.put("tests/test_big", f"key-{number:04d}", {"answer": number})
    commit_all(repo, "record 1000 keys")

    Store(repo / "fixtures").put("tests/test_big", "key-0500", {"answer": "re-recorded"})

    stat = git(repo, "diff", "--numstat", "--", "fixtures/index").stdout.split()
    assert stat == ["1", "1", "fixtures/index/tests/test_big.json"]
    git(repo, "add", "-A")
    summary = git(repo, "diff", "--cached", "--stat").stdout.splitlines()[-1]
    # The changed index line, plus the one new blob file (binary, so no line count).
    assert summary.strip().startswith("2 files changed, 1 insertion(+), 1 deletion(-)")


def test_two_branches_adding_different_keys_both_survive_a_merge_on_write(
    tmp_path: Path,
) -> None:
    """Two writers that started from the same index each keep their own keys."""
    first, second = Store(tmp_path), Store(tmp_path)
    first.put("ns", "shared", 0)
    assert second.entries("ns").keys() == {"shared"}  # second has now cached the index

    first.put("ns", "from-first", 1)
    second.put("ns", "from-second", 2)  # must merge with first's write, not overwrite it

    assert set(Store(tmp_path).entries("ns")) == {"shared", "from-first", "from-second"}
