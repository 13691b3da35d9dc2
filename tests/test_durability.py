"""Safe writes: a killed writer loses nothing it finished; concurrent writers lose nothing."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from campaign import size

from castore import Store
from castore._upkeep.verify import FaultKind, verify

WRITER = """
    import sys
    from castore import Store
    store = Store(sys.argv[1])
    prefix, start, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    go = sys.argv[5] if len(sys.argv) > 5 else ""
    if go:
        import os, time
        while not os.path.exists(go):
            time.sleep(0.001)
    for number in range(start, start + count):
        # Big enough values that a kill often lands in the middle of writing a blob.
        store.put("tests/test_long", f"{prefix}-{number:05d}",
                  {"n": number, "text": f"response {number} " * 3000})
        print(number, flush=True)
"""


def expected_value(number: int) -> dict[str, object]:
    return {"n": number, "text": f"response {number} " * 3000}


KILLS = size(ci=4, full=100)
WRITERS = size(ci=2, full=8)
KEYS_PER_WRITER = size(ci=250, full=500)


def test_writers_killed_at_random_instants_lose_no_finished_entry(
    tmp_path: Path, start_python
) -> None:
    """Each round starts a writer and kills it with SIGKILL a random few milliseconds
    after some entry finished, so kills land anywhere in a put: mid-blob, mid-index,
    between the two. Every entry the writer reported finished must read back."""
    chance = random.Random(12)
    finished: list[int] = []
    for round_number in range(KILLS):
        start = round_number * 10_000
        writer = start_python(WRITER, str(tmp_path), "key", str(start), "100000")
        assert writer.stdout is not None
        target = len(finished) + chance.randint(1, 12)
        while len(finished) < target:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "writer died"
            finished.append(int(line))
        time.sleep(chance.random() * 0.02)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert writer.returncode == -signal.SIGKILL

    store = Store(tmp_path)  # opens fine after every kill
    entries = store.entries("tests/test_long")
    for number in finished:
        assert store.get("tests/test_long", f"key-{number:05d}") == expected_value(number)
    # Entries written after the last one read from the pipe are whole too: an index
    # never names a blob that was cut short.
    for key in entries:
        number = int(key.removeprefix("key-"))
        assert store.get("tests/test_long", key) == expected_value(number)
    report = verify(store)
    # An orphan blob or a temporary file of the write in flight is upkeep for gc.
    harmless = {FaultKind.ORPHAN, FaultKind.STRAY}
    assert [fault for fault in report.faults if fault.kind not in harmless] == []
    print(
        f"\n{KILLS} kills, {len(finished)} finished entries checked, 0 lost, "
        f"{len(entries) - len(finished)} more entries written before the kill read whole"
    )


def test_concurrent_writers_into_one_namespace_keep_every_entry(
    tmp_path: Path, start_python
) -> None:
    go = tmp_path / "go"
    names = [f"writer{number}" for number in range(WRITERS)]
    writers = [
        start_python(WRITER, str(tmp_path / "store"), name, "0", str(KEYS_PER_WRITER), str(go))
        for name in names
    ]
    time.sleep(0.5 + 0.1 * WRITERS)  # every interpreter is up and waiting
    go.touch()
    for writer in writers:
        _, errors = writer.communicate(timeout=900)
        assert writer.returncode == 0, errors

    store = Store(tmp_path / "store")
    keys = set(store.entries("tests/test_long"))
    assert keys == {f"{name}-{n:05d}" for name in names for n in range(KEYS_PER_WRITER)}
    for number in (0, KEYS_PER_WRITER // 2, KEYS_PER_WRITER - 1):
        assert store.get("tests/test_long", f"{names[-1]}-{number:05d}") == expected_value(number)
    # The writers recorded the same values: each stored once.
    assert len(list(store.blobs())) == KEYS_PER_WRITER
    assert verify(store).faults == []
    print(f"\n{WRITERS} writers x {KEYS_PER_WRITER} keys: {len(keys)} entries, 0 lost")


def test_a_put_fsyncs_its_files_and_folders_unless_castore_fsync_says_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite itself runs with ``CASTORE_FSYNC=0`` (conftest.py); a user's default is
    to fsync. Counted through the real ``os.fsync``, which still runs."""
    real_fsync = os.fsync
    synced: list[int] = []

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store = Store(tmp_path / "store")

    monkeypatch.delenv("CASTORE_FSYNC", raising=False)
    store.put("tests/test_a", "key-1", {"answer": 1})
    assert len(synced) >= 4  # the blob and the index, each with its folder

    for off in ("0", "false", "No", " off "):
        synced.clear()
        monkeypatch.setenv("CASTORE_FSYNC", off)
        store.put("tests/test_a", f"key-{off.strip()}", {"answer": off})
        assert synced == [], off
    monkeypatch.setenv("CASTORE_FSYNC", "1")
    store.put("tests/test_a", "key-2", {"answer": 2})
    assert synced

    # Unsynced writes are still whole files, renamed into place: every value reads back.
    reopened = Store(tmp_path / "store")
    assert reopened.get("tests/test_a", "key-off") == {"answer": " off "}
    assert verify(reopened).faults == []
