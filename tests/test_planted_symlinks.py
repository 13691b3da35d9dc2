"""Symlinks planted in a store by a hostile branch carry no read or write out of it.

Each scenario runs in a child process with an audit hook (open, rename, remove, mkdir,
listdir…) that records every path outside the store it touches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from castore import Store
from castore.errors import IndexFormatError

NAMESPACE = "tests/sub/test_x"

CHILD = textwrap.dedent(
    r"""
    import json, os, sys
    root, outside = (os.path.realpath(arg) for arg in sys.argv[1:3])
    touched = []

    def hook(event, args):
        if event in ("open", "os.remove", "os.rename", "os.mkdir", "os.listdir",
                     "os.scandir", "os.truncate", "shutil.move", "os.symlink", "os.chmod"):
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    real = os.path.realpath(os.fsdecode(arg))
                    if real == outside or real.startswith(outside + os.sep):
                        touched.append([event, real])

    from castore import Recorder, Store
    from castore.errors import CastoreError
    sys.addaudithook(hook)
    outcomes = []
    for action in ("get", "record", "put", "verify", "gc"):
        try:
            store = Store(root)
            if action == "get":
                store.get("tests/sub/test_x", "old")
            elif action == "record":
                Recorder(store, "tests/sub/test_x", mode="new_episodes").get_or_record_sync(
                    "new", lambda: {"answer": "new"})
            elif action == "put":
                store.put("tests/sub/test_x", "other", {"answer": 2})
            elif action == "verify":
                from castore._upkeep.verify import verify
                verify(store)
            else:
                from castore._upkeep.collect import collect_garbage
                collect_garbage(store)
            outcomes.append([action, "ok"])
        except CastoreError as error:
            outcomes.append([action, type(error).__name__, str(error)])
    print(json.dumps({"touched": touched, "outcomes": outcomes}))
    """
)


def make_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "old", {"answer": "old"})
    return store


def plant(store: Store, where: str, outside: Path) -> None:
    """Move a store folder outside and leave a symlink in its place, as a branch could."""
    folder = store.root / where
    if folder.exists():
        folder.rename(outside / "moved")
        (outside / "moved").rename(outside / folder.name)
        target = outside / folder.name
    else:
        target = outside / "empty"
        target.mkdir()
        folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize("where", [".castore", "index/tests", "blobs", "blobs/FANOUT"])
def test_a_planted_folder_symlink_is_refused_and_nothing_outside_is_touched(
    tmp_path: Path, where: str
) -> None:
    store = make_store(tmp_path)
    store.put("warm", "up", 1)  # creates .castore
    outside = tmp_path / "outside"
    outside.mkdir()
    entry = store.entry(NAMESPACE, "old")
    assert entry is not None
    plant(store, where.replace("FANOUT", entry.blob[:2]), outside)
    before = sorted(str(path) for path in outside.rglob("*"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run = subprocess.run(
        [sys.executable, str(script), str(store.root), str(outside)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["touched"] == []
    assert sorted(str(path) for path in outside.rglob("*")) == before
    refused = [outcome for outcome in report["outcomes"] if outcome[1] != "ok"]
    assert refused, report["outcomes"]
    for _, error, message in refused:
        assert error == "UnsafePathError"
        assert "leads outside the store" in message


@pytest.mark.parametrize("target", ["itself", "outside"])
def test_an_index_planted_as_a_symlink_is_refused_by_name_on_put_and_get(
    tmp_path: Path, target: str
) -> None:
    """A symlink loop (or a link anywhere) at an index path: ``put`` and ``get`` both give
    castore's error naming the file, never a raw ``OSError`` (ELOOP), and nothing is
    written through the link."""
    store = make_store(tmp_path)
    index = store.root / "index" / "tests" / "sub" / "test_loop.json"
    outside = tmp_path / "outside.json"
    index.symlink_to(index if target == "itself" else outside)
    for attempt in (
        lambda: store.put("tests/sub/test_loop", "key", {"answer": 1}),
        lambda: Store(store.root).get("tests/sub/test_loop", "key"),
    ):
        with pytest.raises(IndexFormatError, match="symbolic link") as raised:
            attempt()
        assert str(index) in str(raised.value)
    assert index.is_symlink() and not outside.exists()
    assert Store(store.root).get(NAMESPACE, "old") is not None
