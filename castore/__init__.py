"""castore: record expensive API responses once, replay them in every test run.

The public API is what this module exports (docs/api.md); ``castore._*`` is private.
"""

from castore._index import Entry
from castore._keys import request_key, stored_key
from castore._modes import Mode
from castore._recorder import Recorder, RecordingListener
from castore._redact import redactor
from castore._store import Store

__all__ = [
    "Entry",
    "Mode",
    "Recorder",
    "RecordingListener",
    "Store",
    "redactor",
    "request_key",
    "stored_key",
]
