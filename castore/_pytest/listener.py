"""What the session hears from its recorders: every replay, recording and miss.

The pytest side's :class:`~castore.RecordingListener`: it counts lookups into the session's
:class:`Usage`, notes which test asked, and phrases the command that records a key.
"""

from __future__ import annotations

import os
import shlex

from castore._pytest.usage import Usage
from castore._recording.modes import Mode
from castore._recording.recorder import Recorder
from castore._recording.staleness import Problem
from castore._storage.index import Entry, now


class SessionListener:
    def __init__(self, root_option: str | None) -> None:
        self.fresh_since = now()
        self.usage = Usage()
        self.current_nodeid: str | None = None
        self._root_option = root_option
        #: node id -> the messages of misses not yet judged (see ``swallowed``).
        self._misses_of: dict[str, list[str]] = {}

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        self.usage.hits += 1
        self.usage.saved_seconds += entry.duration or 0.0
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        self.usage.recorded += 1
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None:
        self.usage.misses += 1
        self.usage.missing.append((recorder.namespace, key, problem.miss, problem.reason))
        self.usage.note(recorder.namespace, key, self.current_nodeid)
        if self.current_nodeid is not None:
            message = problem.message or f"{recorder.namespace} :: {key}: {problem.reason}"
            self._misses_of.setdefault(self.current_nodeid, []).append(message)

    def take_misses(self, nodeid: str) -> list[str]:
        """The messages of the misses ``nodeid`` had since it was last asked."""
        return self._misses_of.pop(nodeid, [])

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        runner = "uv run pytest" if "UV_RUN_RECURSION_DEPTH" in os.environ else "pytest"
        target = shlex.quote(self.current_nodeid or recorder.namespace + ".py")
        root = self._root_option
        extra = f" --castore-root={shlex.quote(root)}" if root else ""
        if mode is Mode.ALL:
            return f"RECORD_FIXTURES=true {runner} {target}{extra}"
        return f"{runner} {target} --castore-mode=new_episodes{extra}"
