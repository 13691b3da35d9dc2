"""Full disks and read-only mounts, on real mounts: a castore error that names the file
and the cause, the store exactly as it was, and replay still working.

The mounts need root (CI runs as root); elsewhere those tests skip and say why. The
last test injects the same errno values through an audit hook, so every machine runs it.
"""

from __future__ import annotations

import base64
import json
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
    assert list(internals(Store(store.root)).blobs.strays()) == []  # no temp file left


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
    # The session runs in this process: a module name of its own (this module is
    # test_faults), and the loop scope set, or pytest-asyncio's start-up warning would
    # join this run's summary.
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        f"castore_root = {read_only.root}\n"
    )
    pytester.makepyfile(
        test_read_only_replay="""
import pytest

@pytest.mark.castore(namespace="tests/test_faults")
def test_replay(recorder):
    assert recorder.get_or_record_sync("key 2", lambda: 1 / 0) == {"answer": "answer 2" * 20}
"""
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*1 replayed*", "*could not save the unused-recording verdicts*cannot be written*"]
    )


# --- the same failures injected, where no mount is possible -----------------------------

INJECTED = """
import errno, json, os, sys
from click.testing import CliRunner
from castore import Recorder, Store
from castore.cli import main
from castore.errors import CastoreError

root, code, source = sys.argv[1], getattr(errno, sys.argv[2]), sys.argv[3]
prefix = os.path.realpath(root)
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MUTATIONS = {"os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir", "os.mkdir",
             "os.link", "os.symlink", "os.truncate", "os.chmod", "shutil.move"}

def inside(path):
    return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(
        os.fsdecode(path)).startswith(prefix)

def refuse(event, args):
    # What the kernel says on a full disk or a read-only mount, for any change in the store.
    if event == "open" and inside(args[0]):
        mode, flags = args[1], args[2] or 0
        if (isinstance(mode, str) and set(mode) & set("wax+")) or flags & WRITES:
            raise OSError(code, os.strerror(code), os.fsdecode(args[0]))
    elif event in MUTATIONS and any(inside(arg) for arg in args[:2]):
        raise OSError(code, os.strerror(code), os.fsdecode(args[0]))

store = Store(root)
outcomes = {}
def attempt(name, operation):
    try:
        operation()
        outcomes[name] = "ok"
    except CastoreError as error:
        outcomes[name] = f"{type(error).__name__}: {error}"

sys.addaudithook(refuse)
attempt("get", lambda: store.get("tests/test_faults", "key 3"))
attempt("put", lambda: store.put("tests/test_faults", "new", {"answer": "new"}))
attempt("delete", lambda: store.delete("tests/test_faults", "key 1"))
recorder = Recorder(store, "tests/test_faults", mode="all")
attempt("record", lambda: recorder.get_or_record_sync("fresh", lambda: {"answer": 1}))
runner = CliRunner()
for args in (["verify"], ["gc", "--dry-run"], ["prune", "--dry-run"], ["stats"], ["gc"],
             ["import", source], ["train-dictionary"], ["delete", "tests/test_faults",
             "key 2", "--yes"]):
    result = runner.invoke(main, ["--root", root, *args])
    outcomes[" ".join(args[:2])] = (result.exit_code, result.output.strip()[-300:],
                                    repr(result.exception))
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize(
    ("fault", "hint"), [("ENOSPC", "disk is full"), ("EROFS", "cannot be written here")]
)
def test_injected_full_disk_or_read_only_store_ends_in_store_write_errors_and_loses_nothing(
    tmp_path: Path, recorded: Store, run_python, fault: str, hint: str
) -> None:
    """Runs everywhere: an audit hook fails every change under the store with ``fault``,
    as a full disk or a read-only mount would, with no root needed."""
    source = tmp_path / "import.json"
    source.write_text('{"k": {"response": "imported"}}')
    before = snapshot(recorded.root)
    outcomes = json.loads(
        run_python(INJECTED, str(recorded.root), fault, str(source)).stdout.splitlines()[-1]
    )
    assert outcomes.pop("get") == "ok"
    for name in ("put", "delete", "record"):
        assert outcomes.pop(name).startswith("StoreWriteError"), name
    for reading in ("verify", "gc --dry-run", "prune --dry-run", "stats"):
        exit_code, output, exception = outcomes.pop(reading)
        assert exit_code == 0, (reading, output, exception)
    for writing, (exit_code, output, _) in outcomes.items():
        assert exit_code == 3, (writing, output)
        assert hint in output, (writing, output)
        assert "Traceback" not in output
    assert snapshot(recorded.root) == before
    assert Store(recorded.root).get(NAMESPACE, "key 3") == {"answer": "answer 3" * 20}
