"""castore: record expensive API responses once, replay them in every test run.

The public API is what this module exports (docs/api.md); ``castore._*`` is private.
Every type a public signature names is exported here too, and public classes say they
come from ``castore`` (``castore.Entry``, not ``castore._storage.index.Entry``), as
httpx's do: reprs, tracebacks and pickles name the public path, which stays put when
the private modules move.
"""

import inspect
import typing

from castore._pytest.plain_imports import without_assertion_rewriting

with without_assertion_rewriting():  # under pytest: 80 ms less per session (see there)
    from castore._recording.hosts import HostList
    from castore._recording.modes import Mode
    from castore._recording.recorder import Recorder, RecordingListener
    from castore._recording.redact import redactor
    from castore._recording.request_keys import request_key, request_summary
    from castore._recording.staleness import Miss, Problem
    from castore._recording.tally import RecorderStats
    from castore._recording.volatile import Volatility
    from castore._storage.blobs.stored import BlobFile
    from castore._storage.config import RemoteSpec, StoreConfig
    from castore._storage.index import Entry, StreamKind
    from castore._storage.locks import KeyLock
    from castore._storage.names import stored_key
    from castore._storage.namespace import Namespace
    from castore._storage.store import Store

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


def _present_as_public(cls: type) -> None:
    """Make ``cls`` report ``castore`` as its module.

    Its annotations (and a dataclass's field types) are resolved first, where they were
    written: ``typing.get_type_hints`` and pydantic evaluate a class's string annotations
    in the namespace of ``cls.__module__``, which is this module afterwards. A class whose
    annotations name types only imported for type checking keeps its strings.
    """
    own = inspect.get_annotations(cls)
    if not own:  # nothing to resolve (Recorder, Store...): skip evaluating its bases'
        cls.__module__ = __name__
        return
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError:
        hints = {}
    if hints:
        cls.__annotations__ = {name: hints.get(name, value) for name, value in own.items()}
        for field in getattr(cls, "__dataclass_fields__", {}).values():
            field.type = hints.get(field.name, field.type)
    cls.__module__ = __name__


def __getattr__(name: str) -> str:
    """``castore.__version__``, read from the installed distribution (pyproject.toml is
    its only source) when first asked: importlib.metadata costs every process that
    imports castore tens of milliseconds, the git drivers and each ``castore`` command
    included, and few of them ever ask."""
    if name != "__version__":
        raise AttributeError(f"module 'castore' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        found = version("castore")
    except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path
        found = "0+unknown"
    globals()["__version__"] = found
    return found


for _name in __all__:
    if isinstance(globals()[_name], type):
        _present_as_public(globals()[_name])
del _name
