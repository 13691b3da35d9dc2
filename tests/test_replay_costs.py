"""What a replay does not pay for: the recording path's modules, and the report hooks
only a recording or a miss needs. A test module run alone costs castore its import above
all, and a suite of thousands of tests costs it its per-test hooks (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: Modules a replay that finds its recordings never needs (each loads where its path
#: starts): the full lookup and its flights, staleness checks, the nearest-key search,
#: volatile parts, request keys, streams, stats, listings.
RECORDING_PATH = (
    "castore._recording.lookup",
    "castore._recording.flights",
    "castore._recording.staleness",
    "castore._recording.nearest",
    "castore._recording.volatile",
    "castore._recording.request_keys",
    "castore._recording.streams",
    "castore._recording.recorder_stats",
    "castore._storage.blobs.blob_file",
)

LOOKUP = """
import json, sys
import castore.pytest_plugin
from castore import Recorder
recorder = Recorder(sys.argv[1], "tests/test_x", mode=sys.argv[2])
assert recorder.get_or_record_sync("answer", lambda: {"text": "forty-two"}) == {"text": "forty-two"}
print(json.dumps(sorted(name for name in sys.modules if name.startswith("castore"))))
"""


def test_a_replay_imports_none_of_the_recording_path(
    tmp_path: Path, run_python: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    store = str(tmp_path / "store")
    recording = set(json.loads(run_python(LOOKUP, store, "all").stdout))
    replay = set(json.loads(run_python(LOOKUP, store, "none").stdout))
    assert {"castore._recording.lookup", "castore._recording.flights"} <= recording
    assert "castore._recording.recorder" in replay
    assert not replay & set(RECORDING_PATH), replay & set(RECORDING_PATH)


CONFTEST = """
import json

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    registered = session.config.pluginmanager.get_plugin("castore-recording-reports")
    with open("reports.json", "w") as out:
        json.dump(registered is not None, out)
"""

SUITE = """
def test_one(recorder):
    assert recorder.get_or_record_sync("answer", lambda: "forty-two") == "forty-two"


def test_two(recorder):
    assert recorder.get_or_record_sync("question", lambda: [1, 2, 3]) == [1, 2, 3]
"""

SWALLOWS_A_MISS = """

def test_three(recorder):
    try:
        recorder.get_or_record_sync("never recorded", lambda: 1)
    except Exception:
        pass  # swallowed: the session fails the test anyway
"""


def reports_registered(pytester: pytest.Pytester, *args: str, **outcomes: Any) -> bool:
    result = pytester.runpytest_inprocess("-p", "no:randomly", *args)
    result.assert_outcomes(**outcomes)
    registered: bool = json.loads((pytester.path / "reports.json").read_text())
    return registered


def test_report_hooks_are_registered_by_the_first_recording_or_miss(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that finds every recording pays none of the report hooks' calls; a
    recording still shows ``R``, and a swallowed miss still fails its test."""
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(
        "[pytest]\ncastore_root = recordings\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    assert reports_registered(pytester, "--castore-mode=all", "-v", passed=2)
    assert not reports_registered(pytester, passed=2)
    pytester.makepyfile(test_suite=SUITE + SWALLOWS_A_MISS)
    assert reports_registered(pytester, passed=2, failed=1)
