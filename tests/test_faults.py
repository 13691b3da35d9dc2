"""Full disks and read-only mounts, on real mounts: a castore error that names the file
and the cause, the store exactly as it was, and replay still working.

The mounts need root (CI runs as root); elsewhere these tests skip and say why.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from castore import Store
from castore._storage.store import internals
from castore._upkeep.verify import verify
from castore.cli import main
from castore.errors import StoreWriteError

pytest_plugins = ["pytester"]

NAMESPACE = "tests/test_faults"


def mount(*args: str) -> None:
    run = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        pytest.skip(f"cannot mount here ({run.stderr.strip() or run.returncode}); run as root")


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs."""
    point = tmp_path / "disk"
    point.mkdir()
    mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point))
    yield point
    unmount(point)


@pytest.fixture
def recorded(tmp_path: Path) -> Store:
    store = Store(tmp_path / "source" / "store")
    for i in range(5):
        store.put(NAMESPACE, f"key {i}", {"answer": f"answer {i}" * 20})
    return store


@pytest.fixture
def read_only(tmp_path: Path, recorded: Store) -> Iterator[Store]:
    """The recorded store, seen through a real read-only bind mount."""
    point = tmp_path / "ro"
    point.mkdir()
    mount("--bind", str(recorded.root.parent), str(point))
    try:
        mount("-o", "remount,bind,ro", str(point))
    except BaseException:
        unmount(point)
        raise
    yield Store(point / "store")
    unmount(point)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".castore" not in path.parts
    }


def fill(disk: Path, leave: int) -> None:
    """Fill the disk until about ``leave`` bytes remain."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_put_on_a_full_disk_is_a_store_write_error_and_loses_nothing(small_disk: Path) -> None:
    store = Store(small_disk / "store")
    store.put(NAMESPACE, "kept", {"answer": "kept"})
    before = snapshot(store.root)
    fill(small_disk, 64 * 1024)
    with pytest.raises(StoreWriteError, match="the disk is full") as raised:
        store.put(NAMESPACE, "too big", {"blob": os.urandom(512 * 1024)})
    assert str(store.root) in str(raised.value)
    assert snapshot(store.root) == before
    assert Store(store.root).get(NAMESPACE, "kept") == {"answer": "kept"}
    assert list(internals(Store(store.root)).backend.strays()) == []  # no temp file left


def test_the_cli_on_a_full_disk_exits_3_with_the_message_not_a_traceback(
    small_disk: Path, tmp_path: Path
) -> None:
    store = Store(small_disk / "store")
    store.put(NAMESPACE, "kept", {"answer": "kept"})
    export = tmp_path / "export.json"
    export.write_text(
        '{"$castore_export": {"format": 1, "namespace": "big"}, '
        f'"k": {{"response": {{"$base64": "{base64.b64encode(os.urandom(600_000)).decode()}"}}}}}}'
    )
    fill(small_disk, 64 * 1024)
    result = CliRunner().invoke(main, ["--root", str(store.root), "import", str(export)])
    assert result.exit_code == 3, result.output
    assert "disk is full" in result.output
    assert "Traceback" not in result.output
    assert Store(store.root).get(NAMESPACE, "kept") == {"answer": "kept"}


def test_a_read_only_store_replays_and_refuses_writes_by_name(read_only: Store) -> None:
    before = snapshot(read_only.root)
    assert read_only.get(NAMESPACE, "key 3") == {"answer": "answer 3" * 20}
    with pytest.raises(StoreWriteError, match="cannot be written here"):
        read_only.put(NAMESPACE, "new", {"answer": "new"})
    with pytest.raises(StoreWriteError):
        read_only.delete(NAMESPACE, "key 1")
    assert snapshot(read_only.root) == before


def test_verify_and_dry_runs_work_on_a_read_only_store(read_only: Store) -> None:
    assert verify(read_only).faults == []
    runner = CliRunner()
    for args in (["verify"], ["gc", "--dry-run"], ["prune", "--dry-run"], ["stats"]):
        result = runner.invoke(main, ["--root", str(read_only.root), *args])
        assert result.exit_code == 0, (args, result.output)
    gc = runner.invoke(main, ["--root", str(read_only.root), "gc"])
    assert gc.exit_code == 3
    assert "cannot be written here" in gc.output


def test_a_replay_run_on_a_read_only_store_passes_and_says_what_it_could_not_save(
    pytester: pytest.Pytester, read_only: Store
) -> None:
    pytester.makeini(f"[pytest]\ncastore_root = {read_only.root}\n")
    pytester.makepyfile(
        test_faults="""
import pytest

@pytest.mark.castore(namespace="tests/test_faults")
def test_replay(recorder):
    assert recorder.get_or_record_sync("key 2", lambda: 1 / 0) == {"answer": "answer 2" * 20}
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*1 replayed*", "*could not save the unused-recording verdicts*cannot be written*"]
    )
