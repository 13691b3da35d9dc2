"""Safe writes: a killed writer loses nothing it finished; concurrent writers lose nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from castore import Store

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


def test_a_writer_killed_mid_loop_leaves_every_finished_entry_intact(
    tmp_path: Path, start_python
) -> None:
    finished: list[int] = []
    for round_number, kill_after in enumerate((40, 73, 121)):
        start = round_number * 10_000
        writer = start_python(WRITER, str(tmp_path), "key", str(start), "100000")
        assert writer.stdout is not None
        target = len(finished) + kill_after
        while len(finished) < target:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "writer died"
            finished.append(int(line))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert writer.returncode == -signal.SIGKILL

        store = Store(tmp_path)  # opens fine after every kill
        entries = store.entries("tests/test_long")
        for number in finished:
            assert store.get("tests/test_long", f"key-{number:05d}") == expected_value(number)
        # At most the one entry being written when the kill came is beyond what was printed.
        assert len(finished) <= len(entries) <= len(finished) + 1 + round_number


def test_two_processes_writing_500_keys_each_into_one_namespace_keep_all_1000(
    tmp_path: Path, start_python
) -> None:
    go = tmp_path / "go"
    writers = [
        start_python(WRITER, str(tmp_path / "store"), name, "0", "500", str(go))
        for name in ("left", "right")
    ]
    time.sleep(0.5)  # both interpreters are up and waiting
    go.touch()
    for writer in writers:
        _, errors = writer.communicate(timeout=240)
        assert writer.returncode == 0, errors

    store = Store(tmp_path / "store")
    keys = set(store.entries("tests/test_long"))
    assert len(keys) == 1000
    assert keys == {f"{name}-{n:05d}" for name in ("left", "right") for n in range(500)}
    for number in (0, 250, 499):
        assert store.get("tests/test_long", f"left-{number:05d}") == expected_value(number)
    # The two writers recorded the same 500 values: each stored once.
    assert len(list(store.blobs())) == 500
