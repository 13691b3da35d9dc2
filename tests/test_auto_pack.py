"""Automatic packing after a session that recorded, and a session's cost following the
tests it runs: real pytest sessions (pytester)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from castore import Store
from castore._storage.store import internals
from castore._upkeep.packing import pack_store

pytest_plugins = ["pytester"]
LOOP_SCOPE = "asyncio_default_fixture_loop_scope = function\n"

MODULE = """
import os

def answer(module, key):
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    words = " ".join(f"w{{(module * 7919 + key * 104729 + n * 31) % 100003}}" for n in range(60))
    return {{"module": module, "key": key, "text": words}}

def test_answers(recorder):
    for key in range({keys}):
        value = recorder.get_or_record_sync(f"key {{key}}", lambda: answer({module}, key))
        assert value["key"] == key
"""

#: Records every index or pack file a session opens, to a file named by CASTORE_OPENED.
AUDIT_CONFTEST = """
import os, sys

LOG = os.environ.get("CASTORE_OPENED")

def _hook(event, args):
    if LOG and event == "open" and isinstance(args[0], str):
        if ("/index/" in args[0] or "/packs/" in args[0]) and not args[0].endswith(".tmp"):
            with open(LOG, "a") as handle:
                handle.write(args[0] + "\\n")

sys.addaudithook(_hook)
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "RECORD_FIXTURES", "CASTORE_LIVE", "CASTORE_REMOTE"):
        monkeypatch.delenv(name, raising=False)


def project(pytester: pytest.Pytester, modules: int, keys: int, ini: str = "") -> Path:
    pytester.makefile(".ini", pytest=f"[pytest]\n{LOOP_SCOPE}castore_root = store\n{ini}\n")
    for module in range(modules):
        pytester.makepyfile(**{f"tests/test_m{module}": MODULE.format(keys=keys, module=module)})
    return pytester.path / "store"


def record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> pytest.RunResult:
    with monkeypatch.context() as live:
        live.setenv("CASTORE_LIVE", "1")
        return pytester.runpytest("--castore-mode=all", *args)


def loose(root: Path) -> list[Path]:
    return sorted((root / "blobs").rglob("*.zst"))


def packs(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*.pack"))


def test_a_session_past_the_default_threshold_leaves_packs_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(pytester, modules=3, keys=40)  # 120 values: past the default 100
    result = record(pytester, monkeypatch)
    result.assert_outcomes(passed=3)
    found = re.search(r"packed (\d+) blobs into (\d+) pack\(s\)", result.stdout.str())
    assert found and int(found.group(1)) == 120, result.stdout.str()
    assert packs(root)
    assert len(loose(root)) == 1  # the zstd dictionary the first pack trained
    assert "trained zstd dictionary" in result.stdout.str()
    pytester.runpytest().assert_outcomes(passed=3)  # replays from the packs


def test_below_the_threshold_new_recordings_stay_loose(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(pytester, modules=1, keys=30)
    result = record(pytester, monkeypatch)
    assert "packed" not in result.stdout.str()
    assert len(loose(root)) == 30 and not packs(root)


def test_the_threshold_is_an_ini_option_and_another_turns_packing_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(pytester, modules=1, keys=30, ini="castore_auto_pack = false")
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    assert len(loose(root)) == 30 and not packs(root)
    pytester.makefile(
        ".ini", pytest=f"[pytest]\n{LOOP_SCOPE}castore_root = store\ncastore_auto_pack_blobs = 10\n"
    )
    result = record(pytester, monkeypatch)
    assert "packed 30 blobs into 1 pack(s)" in result.stdout.str()
    assert packs(root)


def test_packing_after_a_session_is_deterministic(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 30 values over two namespaces, past the ini's threshold of 20: the first pack still
    # trains a dictionary (it needs 16 samples), at a quarter of the writes that passing
    # the default threshold of 100 takes (the test above covers the default).
    root = project(pytester, modules=2, keys=15, ini="castore_auto_pack_blobs = 20")
    result = record(pytester, monkeypatch)
    result.assert_outcomes(passed=2)
    assert "packed 30 blobs" in result.stdout.str()
    assert "trained zstd dictionary" in result.stdout.str()
    first = {path.name: path.read_bytes() for path in (root / "packs").iterdir()}
    # The same recordings, written elsewhere by hand and packed by the command: the same
    # packs, byte for byte (the dictionary trained on the same sample included).
    store = Store(root)
    copy = Store(tmp_path / "copy")
    for namespace in store.namespaces():
        for key in sorted(store.entries(namespace)):
            copy.put(namespace, key, store.get(namespace, key))
    pack_store(copy)
    second = {path.name: path.read_bytes() for path in (copy.root / "packs").iterdir()}
    assert first == second


def test_the_value_size_limit_is_an_ini_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, modules=1, keys=2, ini="castore_max_value_bytes = 200")
    result = record(pytester, monkeypatch)
    result.assert_outcomes(failed=1)
    assert "castore_max_value_bytes" in result.stdout.str()


def test_a_session_reads_only_the_indexes_and_packs_of_the_tests_it_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A complete checkout: collection checks that nothing is missing with a listing and
    a few stats, and the run reads the one module's index and its pack. Under
    --collect-only nothing is read at all."""
    # Packed as a session past the threshold leaves it (30 values past the ini's 20).
    root = project(pytester, modules=3, keys=10, ini="castore_auto_pack_blobs = 20")
    record(pytester, monkeypatch).assert_outcomes(passed=3)
    assert packs(root) and len(loose(root)) == 1  # the dictionary
    pytester.makeconftest(AUDIT_CONFTEST)
    opened = tmp_path / "opened.txt"
    monkeypatch.setenv("CASTORE_OPENED", str(opened))
    pytester.runpytest_subprocess("--collect-only").assert_outcomes()
    assert not opened.exists() or opened.read_text() == ""
    pytester.runpytest_subprocess("tests/test_m1.py").assert_outcomes(passed=1)
    files = {Path(line).relative_to(root).as_posix() for line in opened.read_text().split()}
    indexes = {name for name in files if name.startswith("index/")}
    assert indexes == {"index/tests/test_m1.json"}
    store = Store(root)
    packs_of = internals(store).blobs.packs
    needed = {packs_of.pack_of(entry.blob) for entry in store.entries("tests/test_m1").values()}
    assert {Path(name).stem for name in files if name.endswith(".pack")} == needed


def test_under_xdist_the_controller_packs_once_after_the_workers_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any three modules' values (24) stay under the threshold, all four (32) pass it, as
    # 90 and 120 do the default 100: no worker's share alone would be packed.
    root = project(pytester, modules=4, keys=8, ini="castore_auto_pack_blobs = 25")
    result = record(pytester, monkeypatch, "-n", "2")
    result.assert_outcomes(passed=4)
    assert result.stdout.str().count("packed 32 blobs into") == 1, result.stdout.str()
    assert len(loose(root)) == 1 and packs(root)
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
