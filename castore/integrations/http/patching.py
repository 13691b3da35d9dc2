"""Turning the client adapters on and off, and keeping nested clients from recording twice.

While an :class:`HttpRecorder` is active, each adapter in ``clients/`` has replaced one
method of its client (the place where a request leaves for its transport). An adapter's
package that is not imported yet is patched the moment it is imported, so a test may
import ``requests`` or ``aiohttp`` after castore turned on; nothing is imported only to
be patched.

Some clients ride on others: openai's aiohttp client is an httpx2 client over aiohttp,
requests and botocore send through urllib3. The outermost client records; while its real
call runs (:func:`live_call`), the clients beneath it pass requests straight through, so
one request is one recording.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Final, Protocol

#: The adapter modules under ``castore.integrations.http.clients``, in patching order.
ADAPTERS: Final = ("httpx", "aiohttp", "urllib3", "grpc")

_lock = threading.Lock()
#: The active recorder (at most one): an ``HttpRecorder``, which imports this module, so
#: it is kept here as a plain object and typed where it is read (``recorder.py``).
_active: list[object] = []
_live_depth: ContextVar[int] = ContextVar("castore_http_live", default=0)


class Adapter(Protocol):
    """What an adapter module provides."""

    #: The top-level packages it patches (each patched when present).
    PACKAGES: Sequence[str]

    def patch(self, package: ModuleType) -> Callable[[], None]:
        """Route ``package``'s requests through the active recorder; returns the undo."""


def active() -> object | None:
    """The active recorder, unless this request is part of another client's real call
    (then it goes straight through, and the outer client records it)."""
    if not _active or _live_depth.get():
        return None
    return _active[0]


@contextlib.contextmanager
def live_call() -> Iterator[None]:
    """Mark the block as a real call being recorded: nested clients pass through."""
    token = _live_depth.set(_live_depth.get() + 1)
    try:
        yield
    finally:
        _live_depth.reset(token)


@contextlib.contextmanager
def activated(recorder: object) -> Iterator[None]:
    with _lock:
        if _active:
            raise RuntimeError("another castore HTTP recorder is already active")
        _active.append(recorder)
        try:
            patches = _Patches()
        except BaseException:
            _active.clear()
            raise
    try:
        yield
    finally:
        with _lock:
            patches.undo()
            _active.clear()


class _Patches:
    """The patches of one activation: installed now for packages already imported, on
    import for the others (by a finder placed first on ``sys.meta_path``)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._waiting: dict[str, Adapter] = {}
        for name in ADAPTERS:
            adapter: Adapter = importlib.import_module(f"{__package__}.clients.{name}")
            for package in adapter.PACKAGES:
                module = sys.modules.get(package)
                if module is not None:
                    self._install(adapter, module)
                else:
                    self._waiting[package] = adapter
        self._watcher: _ImportWatcher | None = None
        if self._waiting:
            self._watcher = _ImportWatcher(self._waiting, self._imported)
            sys.meta_path.insert(0, self._watcher)

    def _install(self, adapter: Adapter, module: ModuleType) -> None:
        self._undo.append(adapter.patch(module))

    def _imported(self, name: str, module: ModuleType) -> None:
        adapter = self._waiting.pop(name, None)
        if adapter is not None:
            self._install(adapter, module)

    def undo(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self._watcher)
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Calls back once a watched top-level package has finished importing."""

    def __init__(
        self, waiting: dict[str, Adapter], callback: Callable[[str, ModuleType], None]
    ) -> None:
        self._waiting = waiting
        self._callback = callback

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _CallingBack(spec.loader, fullname, self._callback)
                return spec
        return None


class _CallingBack(importlib.abc.Loader):
    def __init__(self, inner: Any, name: str, callback: Callable[[str, ModuleType], None]) -> None:
        self._inner = inner
        self._name = name
        self._callback = callback

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        self._callback(self._name, module)

    def __getattr__(self, name: str) -> Any:  # is_package, get_code, get_source…
        return getattr(self._inner, name)
