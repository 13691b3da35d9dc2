"""castore: record expensive API responses once, replay them in every test run.

The public API is what this module exports (docs/api.md); ``castore._*`` is private.
"""

from castore._recording.hosts import HostList
from castore._recording.modes import Mode
from castore._recording.recorder import Recorder, RecordingListener
from castore._recording.redact import redactor
from castore._recording.request_keys import request_key
from castore._storage.index import Entry
from castore._storage.names import stored_key
from castore._storage.namespace import Namespace
from castore._storage.store import Store

__all__ = [
    "Entry",
    "HostList",
    "Mode",
    "Namespace",
    "Recorder",
    "RecordingListener",
    "Store",
    "redactor",
    "request_key",
    "stored_key",
]
