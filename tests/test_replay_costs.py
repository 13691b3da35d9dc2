"""What a replay does not pay for: the recording path's modules. A test module run alone
costs castore its import above all (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

#: Modules a replay that finds its recordings never needs (each loads where its path
#: starts): the full lookup and its flights, staleness checks, the nearest-key search,
#: request keys, streams, stats, listings.
RECORDING_PATH = (
    "castore._recording.lookup",
    "castore._recording.flights",
    "castore._recording.staleness",
    "castore._recording.nearest",
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


THREADS = """
import sys, threading

class Rewriter:  # stands for pytest's hook, which castore takes off to import plainly
    def find_spec(self, *args):
        return None

Rewriter.__module__ = "_pytest.assertion.rewrite"
hook = Rewriter()
sys.meta_path.insert(0, hook)
sys.setswitchinterval(1e-6)
import castore

failures = []
names = ["Miss", "Problem", "RecorderStats", "BlobFile", "request_key", "request_summary"]
start = threading.Barrier(48)

def read(name):
    start.wait()
    try:
        getattr(castore, name)
    except Exception as error:
        failures.append(repr(error))

threads = [threading.Thread(target=read, args=(names[n % len(names)],)) for n in range(48)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not failures, failures
assert sys.meta_path.count(hook) == 1, sys.meta_path
print("ok")
"""


def test_threads_reading_lazy_names_at_once_under_pytests_rewriter_all_get_them(
    run_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """castore takes pytest's rewriting hook off while it imports a lazy name: threads
    doing so at once each get their name, and the hook is back, once."""
    for _ in range(6):  # the race it guards against shows in 1 run of 5 without the lock
        assert run_python(THREADS).stdout.strip() == "ok"


def test_the_recorders_signature_resolves_in_a_fresh_interpreter(
    run_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """Lazy loading keeps every name the constructor's annotations use importable."""
    code = (
        "import typing, castore; "
        "hints = typing.get_type_hints(castore.Recorder.__init__); "
        "print(sorted(k for k in ('redact', 'volatile', 'store') if k in hints))"
    )
    assert run_python(code).stdout.strip() == "['redact', 'store', 'volatile']"
