"""The network guard for grpcio, whose connections the ``socket`` patches never see.

grpcio resolves names and opens its connections in its C core, below Python's ``socket``
module, so the socket-level guard cannot refuse them. This module guards the one place
every gRPC call passes through in Python: the channel's multicallables, for all four
kinds of call (unary and streaming, either way), sync and ``grpc.aio``. A call whose
channel targets a host the guard does not allow is refused before grpcio connects, with
the guard's error; a call ``castore_http`` answers from the store never reaches it (the
HTTP adapter sits above, installed per test).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

#: (module, class) of every multicallable, and the methods that start a call.
_SYNC: Final = (
    ("_UnaryUnaryMultiCallable", ("__call__", "with_call", "future")),
    ("_UnaryStreamMultiCallable", ("__call__",)),
    ("_SingleThreadedUnaryStreamMultiCallable", ("__call__",)),
    ("_StreamUnaryMultiCallable", ("__call__", "with_call", "future")),
    ("_StreamStreamMultiCallable", ("__call__",)),
)
_AIO: Final = (
    "UnaryUnaryMultiCallable",
    "UnaryStreamMultiCallable",
    "StreamUnaryMultiCallable",
    "StreamStreamMultiCallable",
)
#: Target schemes that name this machine, not a host (a socket file, a VM socket).
_LOCAL_SCHEMES: Final = ("unix", "unix-abstract", "vsock")

Check = Callable[[str, int | None], None]


def target_host(target: bytes | str) -> tuple[str, int | None]:
    """The host and port a channel target names, in grpc's naming syntax:
    ``dns:///api.x.ai:443``, ``ipv4:127.0.0.1:50051``, ``localhost:50051``, ``[::1]:443``;
    ``localhost`` for a socket file."""
    text = target.decode() if isinstance(target, bytes) else target
    scheme, colon, rest = text.partition(":")
    if colon and scheme in _LOCAL_SCHEMES:
        return "localhost", None
    if colon and scheme in ("dns", "ipv4", "ipv6"):
        text = rest.split("/")[-1].split(",")[0]
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or (":" in host and not host.startswith("[")):
        return text.strip("[]"), None
    return host.strip("[]"), int(port)


def install(check: Check) -> Callable[[], None]:
    """Guard grpcio's multicallables with ``check(host, port)``; returns the undo."""
    sync = importlib.import_module("grpc._channel")
    aio = importlib.import_module("grpc.aio._channel")
    replaced: list[tuple[type, str, Any]] = []
    for class_name, methods in _SYNC:
        sync_owner: type | None = getattr(sync, class_name, None)
        if sync_owner is None:
            continue
        for method in methods:
            if method in sync_owner.__dict__:
                replaced.append((sync_owner, method, sync_owner.__dict__[method]))
    for class_name in _AIO:
        owner = getattr(aio, class_name, None)
        if owner is not None and "__call__" in owner.__dict__:
            replaced.append((owner, "__call__", owner.__dict__["__call__"]))
    for owner, method, original in replaced:
        setattr(owner, method, _guarded(original, check))

    def undo() -> None:
        for owner, method, original in replaced:
            setattr(owner, method, original)

    return undo


def _guarded(original: Callable[..., Any], check: Check) -> Callable[..., Any]:
    def call(multicallable: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        target = getattr(multicallable, "_target", None)
        if target is None:  # grpc.aio: the target is the Cython channel's
            target = getattr(getattr(multicallable, "_channel", None), "target", None)
        if isinstance(target, bytes | str):
            check(*target_host(target))
        return original(multicallable, *args, **kwargs)

    return call
