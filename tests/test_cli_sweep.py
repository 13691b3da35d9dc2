"""Every `castore` command on every kind of broken store: a message and exit code 0, 1 or
3, never a raw traceback, and nothing outside the store touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner
from conftest import commit_all, git

from castore import Entry, Store
from castore._storage.codec import digest
from castore._storage.index import now
from castore._storage.store import internals
from castore._upkeep.packing import pack_store
from castore.cli import main

NAMESPACE = "tests/test_sweep"


def healthy(root: Path) -> Store:
    store = Store(root)
    store.put(NAMESPACE, "good", {"answer": "yes"})
    store.put(NAMESPACE, "other", [1, 2, 3])
    return store


def garbage_blob(store: Store) -> None:
    blob = store.entries(NAMESPACE)["good"].blob
    path = internals(store).blobs.location(blob)
    path.chmod(0o644)
    path.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(200))


def object_bomb(store: Store) -> None:
    packed = b"\xdd" + (20_000_000).to_bytes(4, "big") + b"\x80" * 20_000_000
    entry = Entry(blob=digest(packed), size=len(packed), recorded_at=now())
    internals(store).writer.put_entry(NAMESPACE, "bomb", entry, packed)


def deep_extension(store: Store) -> None:
    packed = msgpack.packb(1)
    for _ in range(200):
        packed = msgpack.packb(msgpack.ExtType(4, b"\x91" + packed))
    entry = Entry(blob=digest(packed), size=len(packed), recorded_at=now())
    internals(store).writer.put_entry(NAMESPACE, "deep", entry, packed)


def garbage_index(store: Store) -> None:
    internals(store).indexes.path(NAMESPACE).write_bytes(b'{"castore_index": 1, "entr')


def deep_index(store: Store) -> None:
    internals(store).indexes.path(NAMESPACE).write_text("[" * 100_000 + "]" * 100_000)


def fifo_index(store: Store) -> None:
    path = internals(store).indexes.path(NAMESPACE)
    path.unlink()
    os.mkfifo(path)


def zero_config(store: Store) -> None:
    config = store.root / "castore.json"
    config.unlink()
    config.symlink_to("/dev/zero")


def missing_blob(store: Store) -> None:
    blob = store.entries(NAMESPACE)["good"].blob
    internals(store).blobs.location(blob).unlink()


def blobs_outside(store: Store) -> None:
    outside = store.root.parent / "outside"
    (store.root / "blobs").rename(outside)
    (store.root / "blobs").symlink_to(outside)


def index_dir_is_a_file(store: Store) -> None:
    folder = store.root / "index" / "tests"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.write_text("not a folder")


def truncated_pack(store: Store) -> None:
    pack_store(store)
    (pack,) = (store.root / "packs").glob("*.pack")
    pack.write_bytes(pack.read_bytes()[:40])


def garbage_pack_index(store: Store) -> None:
    pack_store(store)
    (index,) = (store.root / "packs").glob("*.idx")
    index.write_bytes(b"castore-pack-index 1\n\xff\xfe")


BREAKAGES: dict[str, Callable[[Store], None]] = {
    "truncated pack": truncated_pack,
    "garbage pack index": garbage_pack_index,
    "garbage blob": garbage_blob,
    "object bomb": object_bomb,
    "deep extension": deep_extension,
    "garbage index": garbage_index,
    "deep index": deep_index,
    "fifo index": fifo_index,
    "castore.json is /dev/zero": zero_config,
    "missing blob": missing_blob,
    "blobs folder outside": blobs_outside,
    "index folder is a file": index_dir_is_a_file,
}


def commands(store: Store, tmp_path: Path, good_blob: str) -> list[list[str]]:
    some_file = tmp_path / "export.json"
    importable = tmp_path / "import.json"
    importable.write_text('{"k": {"response": 1}}')
    return [
        ["stats"],
        ["stats", "--json"],
        ["ls"],
        ["ls", NAMESPACE],
        ["show", NAMESPACE, "good"],
        ["show", NAMESPACE, "bomb"],
        ["show", NAMESPACE, "deep"],
        ["cat", str(store.root / "blobs" / good_blob[:2] / f"{good_blob}.zst")],
        ["verify"],
        ["verify", "--json"],
        ["gc", "--dry-run"],
        ["prune", "--dry-run"],
        ["export", NAMESPACE, "--output", str(some_file)],
        ["import", str(importable)],
        ["train-dictionary"],
        ["delete", NAMESPACE, "other", "--yes"],
        ["diff"],  # the broken working tree against the healthy HEAD~1... HEAD
        ["diff", "HEAD~1", "HEAD"],  # the broken store as committed, read from git
        ["diff", "HEAD~1", "--json"],
        ["gc"],
        ["verify", "--quarantine"],
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.usefixtures("isolated_git")
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_every_command_on_a_broken_store_ends_in_a_message_never_a_traceback(
    tmp_path: Path, breakage: str
) -> None:
    store = healthy(tmp_path / "store")
    good_blob = store.entries(NAMESPACE)["good"].blob
    git(tmp_path, "init", "-q")
    commit_all(tmp_path, "healthy")
    BREAKAGES[breakage](store)
    git(tmp_path, "add", "-A", check=False)  # what git can hold of the damage (not a FIFO)
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "broken")
    outside_before = sorted(path.name for path in tmp_path.iterdir())
    runner = CliRunner()
    for arguments in commands(store, tmp_path, good_blob):
        result = runner.invoke(main, ["--root", str(store.root), *arguments])
        what = f"{breakage}: castore {' '.join(arguments)}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            what,
            result.exception,
        )
        # 2 is click's usage error: `cat` of a blob file that is not there.
        assert result.exit_code in (0, 1, 2, 3), (what, result.exit_code, result.output)
        assert "Traceback" not in result.output, (what, result.output)
        assert "castore-rev-" not in result.output, (what, result.output)  # a temp copy
        if result.exit_code in (2, 3):
            assert "Error: " in result.output, (what, result.output)
    created = {"export.json", "import.json"}
    after = sorted(path.name for path in tmp_path.iterdir())
    assert set(after) - set(outside_before) <= created, after


def test_a_bug_is_one_line_with_exit_3_and_castore_debug_shows_its_traceback(
    tmp_path: Path,
) -> None:
    """An unexpected exception: simulated by a stats helper that raises."""
    healthy(tmp_path / "store")
    code = (
        "import sys, castore._upkeep.stats as stats\n"
        "def broken(*args, **kwargs): raise RuntimeError('boom')\n"
        "stats.store_stats = broken\n"
        "from castore.cli import main\n"
        "main(['--root', sys.argv[1], 'stats'])\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "CASTORE_DEBUG"}
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert run.returncode == 3
    assert "internal error, a bug in castore (RuntimeError: boom)" in run.stderr
    assert "Traceback" not in run.stderr
    debug = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env={**environment, "CASTORE_DEBUG": "1"},
        check=False,
    )
    assert "Traceback" in debug.stderr
    assert "RuntimeError: boom" in debug.stderr
