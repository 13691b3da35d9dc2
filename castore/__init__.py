"""castore: record expensive API responses once, replay them in every test run.

The public API is what this module exports (docs/api.md); ``castore._*`` is private.
Every type a public signature names is exported here too, and public classes say they
come from ``castore`` (``castore.Entry``, not ``castore._storage.index.Entry``), as
httpx's do (``castore._storage.public_names``). Names a replaying session never uses are imported
when first asked (:data:`_LAZY`).
"""

import importlib
from typing import TYPE_CHECKING, Any, Final

from castore._pytest.plain_imports import without_assertion_rewriting

with without_assertion_rewriting():  # under pytest: 80 ms less per session (see there)
    from castore._recording.hosts import HostList
    from castore._recording.modes import Mode
    from castore._recording.recorder import Recorder, RecordingListener
    from castore._recording.redact import redactor
    from castore._recording.volatile import Volatility
    from castore._storage.config import RemoteSpec, StoreConfig
    from castore._storage.index import Entry, StreamKind
    from castore._storage.locks import KeyLock
    from castore._storage.names import stored_key
    from castore._storage.namespace import Namespace
    from castore._storage.store import Store

if TYPE_CHECKING:
    from castore._recording.recorder_stats import RecorderStats
    from castore._recording.request_keys import request_key, request_summary
    from castore._recording.staleness import Miss, Problem
    from castore._storage.blobs.blob_file import BlobFile

#: Public names imported when first asked (PEP 562): a replaying session never uses them,
#: and each module castore imports is part of the fixed cost of every pytest run.
_LAZY: Final = {
    "BlobFile": "castore._storage.blobs.blob_file",
    "Miss": "castore._recording.staleness",
    "Problem": "castore._recording.staleness",
    "RecorderStats": "castore._recording.recorder_stats",
    "request_key": "castore._recording.request_keys",
    "request_summary": "castore._recording.request_keys",
}

__all__ = [
    "BlobFile",
    "Entry",
    "HostList",
    "KeyLock",
    "Miss",
    "Mode",
    "Namespace",
    "Problem",
    "Recorder",
    "RecorderStats",
    "RecordingListener",
    "RemoteSpec",
    "Store",
    "StoreConfig",
    "StreamKind",
    "Volatility",
    "redactor",
    "request_key",
    "request_summary",
    "stored_key",
]


def __getattr__(name: str) -> Any:
    """The lazily imported public names (:data:`_LAZY`), and ``castore.__version__``, read
    from the installed distribution (pyproject.toml is its only source) when first asked:
    importlib.metadata costs every process that imports castore tens of milliseconds, the
    git drivers and each ``castore`` command included, and few of them ever ask."""
    module = _LAZY.get(name)
    if module is not None:
        with without_assertion_rewriting():
            found: Any = getattr(importlib.import_module(module), name)
    elif name == "__version__":
        found = _installed_version()
    else:
        raise AttributeError(f"module 'castore' has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("castore")
    except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path
        return "0+unknown"
