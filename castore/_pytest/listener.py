"""What the session hears from its recorders: every replay, recording and miss.

The pytest side's :class:`~castore.RecordingListener`: it counts lookups into the session's
:class:`Usage`, notes which test asked, and phrases the command that records a key.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from castore._pytest.usage import Usage
from castore._recording.modes import Mode
from castore._recording.recorder import Recorder
from castore._storage.index import Entry, now

if TYPE_CHECKING:
    from castore._recording.staleness import Problem


class SessionListener:
    def __init__(self, root_option: str | None) -> None:
        self.fresh_since = now()
        self.usage = Usage()
        self.current_nodeid: str | None = None
        self._root_option = root_option
        #: Writes one line to the terminal as a key is recorded (``-v``), when set.
        self.progress: Callable[[str], None] | None = None
        #: node id -> how many keys it recorded (a test that records shows ``R``).
        self.recorded_by: dict[str, int] = {}
        #: node id -> the recording mode CI made this test's recorders ignore, and where
        #: it came from (``castore(mode='new_episodes')``).
        self.ci_ignored: dict[str, str] = {}
        #: node id -> the messages of misses not yet judged (see ``swallowed``).
        self._misses_of: dict[str, list[str]] = {}
        #: namespace -> keys re-recorded this session and found unchanged (kept as they
        #: were, so their entries are older than ``fresh_since``).
        self.confirmed: dict[str, set[str]] = {}

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        self.usage.replayed(entry)
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        usage = self.usage
        seconds = entry.duration or 0.0
        unchanged = entry.recorded_at < self.fresh_since  # the same answer: kept as it was
        usage.record(entry, unchanged=unchanged)
        usage.recorded_keys.append((recorder.namespace, key, seconds))
        usage.note(recorder.namespace, key, self.current_nodeid)
        if self.current_nodeid is not None:
            self.recorded_by[self.current_nodeid] = self.recorded_by.get(self.current_nodeid, 0) + 1
        if self.progress is not None:
            kept = ", unchanged: kept as it was" if unchanged else ""
            self.progress(f"castore recorded {recorder.namespace} :: {key} ({seconds:.1f} s{kept})")

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None:
        self.usage.missed()
        self.usage.missing.append((recorder.namespace, key, problem.miss, problem.reason))
        self.usage.note(recorder.namespace, key, self.current_nodeid)
        if self.current_nodeid is not None:
            message = problem.message or f"{recorder.namespace} :: {key}: {problem.reason}"
            self._misses_of.setdefault(self.current_nodeid, []).append(message)

    def take_misses(self, nodeid: str) -> list[str]:
        """The messages of the misses ``nodeid`` had since it was last asked."""
        return self._misses_of.pop(nodeid, [])

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        """The one command the docs promise (``RECORD_FIXTURES=true pytest <node id>``);
        for a key that is only missing, the narrower mode that records just that; and,
        in CI, why this run did not record though the test asked it to."""
        runner = "uv run pytest" if "UV_RUN_RECURSION_DEPTH" in os.environ else "pytest"
        target = shlex.quote(self.current_nodeid or recorder.namespace + ".py")
        root = self._root_option
        extra = f" --castore-root={shlex.quote(root)}" if root else ""
        command = f"RECORD_FIXTURES=true {runner} {target}{extra}"
        if mode is not Mode.ALL:
            command += "\n    (or --castore-mode=new_episodes, to record only what is missing)"
        ignored = self.ci_ignored.get(self.current_nodeid or "")
        if ignored:
            command += (
                f"\n  CI is set, so {ignored} is ignored: CI only replays, and a missing "
                "recording fails instead of calling the real API. Record on your machine "
                "and commit the store"
            )
        return command
