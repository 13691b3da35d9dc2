"""Who hears what a recorder does: the pytest session, or a quiet default in scripts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from castore._recording.modes import Mode
from castore._recording.staleness import Problem
from castore._storage.index import Entry, now

if TYPE_CHECKING:
    from castore._recording.recorder import Recorder


class RecordingListener(Protocol):
    """What a recorder tells the session it belongs to (the pytest plugin implements it)."""

    fresh_since: dt.datetime
    """In mode ``all``, entries recorded after this moment count as already re-recorded.
    A listener may also hold ``confirmed`` (namespace -> keys): keys re-recorded in this
    session and found unchanged, which count as re-recorded though their entry is old."""

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None: ...

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str: ...


class StandaloneListener:
    """Used outside pytest: no accounting, and advice phrased for a recorder in a script."""

    def __init__(self) -> None:
        self.fresh_since = now()
        self.confirmed: dict[str, set[str]] = {}

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None:
        pass

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        root = str(recorder.store.root)
        return f"Recorder({root!r}, {recorder.namespace!r}, mode={mode.value!r})"
