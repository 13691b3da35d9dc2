"""The network guard: in replay, nothing leaves the machine, whatever client a test uses.

castore records the clients it knows, but a test may reach the network through one it does
not (a raw socket, a library's own fetch at import, a streaming gRPC call). The guard
works beneath all of them, at the socket (and, for grpcio, which connects in C below
``socket``, at its calls: ``grpc_guard``): while a session replays (mode ``none``, or CI), a name
lookup or a connection to a host that is not allowed (``castore_allow_hosts``: by default
this machine's loopback names and addresses) fails at once with a
:class:`~castore.errors.NetworkGuardError`, before any packet is sent. That error is a
``ConnectionRefusedError``, so every client reports it as its own connection error and code
built to cope with being offline copes.

In a recording mode the guard only watches: connections to hosts outside the allow-list
that castore did not make itself (``get_or_record``'s call, an HTTP recording) are counted,
and the session report lists them, so a call that will be missing on replay shows now.

The patches are on ``socket``: ``socket.connect``/``connect_ex``/``sendto`` for IPv4 and
IPv6 sockets (asyncio's loops connect through them too), and ``getaddrinfo``,
``gethostbyname`` and ``gethostbyname_ex``. They are installed when the session is
configured, so imports at collection are guarded too, and removed when it ends; nested
sessions (pytester) stack theirs on top.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from castore._pytest.usage import Usage
from castore._recording.hosts import HostList, as_address
from castore._recording.live import inside_live_call
from castore.errors import NetworkGuardError

_INET: Final = (socket.AF_INET, socket.AF_INET6)


class Policy(NamedTuple):
    """What the guard does now: for the running test, or for the session around tests."""

    where: str
    """``test <node id>``, or the session phase, for messages."""
    blocking: bool
    allowed: HostList
    advice: Callable[[str], str]
    """Given ``host[:port]``, what to do about a refused connection (record it, allow it)."""


class NetworkGuard:
    """The socket patches, and what they saw (see the module's docstring)."""

    def __init__(self, policy_now: Callable[[], Policy], usage: Usage) -> None:
        #: The policy in force, asked at each check: a session runs thousands of tests,
        #: and a replaying test seldom connects anywhere, so no test pays for its own
        #: policy until something connects.
        self.policy_now = policy_now
        #: ``host:port`` -> connections made outside castore while recording.
        self.unrecorded = usage.unrecorded_hosts
        #: Connections refused (``host:port (where)``), in order.
        self.refused = usage.refused
        self._lock = threading.Lock()
        #: Addresses that allowed names resolved to: a connection to one is allowed.
        self._learnt: set[str] = set()
        #: The name each address was last looked up by: reports name hosts as tests do.
        self._names: dict[str, str] = {}
        self._originals: dict[tuple[Any, str], Any] = {}

    # --- decisions ---------------------------------------------------------------------

    def allows(self, host: str, port: int | None) -> bool:
        if self.policy_now().allowed.matches(host, port):
            return True
        address = as_address(host)
        return address is not None and str(address) in self._learnt

    def check_connect(self, host: str, port: int | None) -> None:
        """A connection to ``host:port``: refuse it (replay) or count it (recording)."""
        __tracebackhide__ = True
        if self.allows(host, port):
            return
        if self.policy_now().blocking:
            self._refuse(host, port)
        if not inside_live_call():
            target = _target(self._names.get(host, host), port)
            with self._lock:
                self.unrecorded[target] = self.unrecorded.get(target, 0) + 1

    def check_lookup(self, host: Any, port: Any) -> None:
        """A name lookup: refused for a host a replaying test may not reach, before any
        DNS query leaves the machine."""
        __tracebackhide__ = True
        policy = self.policy_now()
        if not host or not policy.blocking:
            return
        name = _text(host)
        if policy.allowed.matches(name, any_port=True):
            return
        address = as_address(name)
        if address is not None and str(address) in self._learnt:
            return
        self._refuse(name, port if isinstance(port, int) else None)

    def learn(self, name: str, results: Any, *, allowed: bool) -> None:
        """Remember what ``name`` resolved to (getaddrinfo's results): its addresses are
        allowed if it is, and reported by its name."""
        with self._lock:
            for entry in results:
                address = str(entry[4][0]).split("%", 1)[0]
                if allowed:
                    self._learnt.add(address)
                if len(self._names) < _MAX_NAMES:
                    self._names[address] = name

    def _refuse(self, host: str, port: int | None) -> None:
        __tracebackhide__ = True
        policy = self.policy_now()
        target = _target(host, port)
        with self._lock:
            self.refused.append(f"{target} ({policy.where})")
        raise NetworkGuardError(host, port, policy.where, policy.advice(target))

    # --- the patches ---------------------------------------------------------------------

    def install(self) -> None:
        guard = self
        socket_class = socket.socket
        connect, connect_ex, sendto = (
            socket_class.connect,
            socket_class.connect_ex,
            socket_class.sendto,
        )

        def guarded_connect(sock: Any, address: Any) -> Any:
            __tracebackhide__ = True
            guard._check_address(sock, address)
            return connect(sock, address)

        def guarded_connect_ex(sock: Any, address: Any) -> Any:
            __tracebackhide__ = True
            guard._check_address(sock, address)
            return connect_ex(sock, address)

        def guarded_sendto(sock: Any, data: Any, *rest: Any) -> Any:
            __tracebackhide__ = True
            if rest:
                guard._check_address(sock, rest[-1])
            return sendto(sock, data, *rest)

        lookups = {
            name: getattr(socket, name)
            for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex")
        }

        def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            guard.check_lookup(host, port)
            results = lookups["getaddrinfo"](host, port, *args, **kwargs)
            if host and as_address(_text(host)) is None:
                allowed = guard.policy_now().allowed.matches(_text(host), any_port=True)
                guard.learn(_text(host), results, allowed=allowed)
            return results

        def guarded_gethostbyname(host: Any) -> Any:
            __tracebackhide__ = True
            guard.check_lookup(host, None)
            return lookups["gethostbyname"](host)

        def guarded_gethostbyname_ex(host: Any) -> Any:
            __tracebackhide__ = True
            guard.check_lookup(host, None)
            return lookups["gethostbyname_ex"](host)

        replacements: dict[tuple[Any, str], Any] = {
            (socket_class, "connect"): guarded_connect,
            (socket_class, "connect_ex"): guarded_connect_ex,
            (socket_class, "sendto"): guarded_sendto,
            (socket, "getaddrinfo"): guarded_getaddrinfo,
            (socket, "gethostbyname"): guarded_gethostbyname,
            (socket, "gethostbyname_ex"): guarded_gethostbyname_ex,
        }
        for (owner, name), replacement in replacements.items():
            self._originals[(owner, name)] = owner.__dict__.get(name, _ABSENT)
            setattr(owner, name, replacement)

    def uninstall(self) -> None:
        for (owner, name), original in self._originals.items():
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._originals.clear()

    def _check_address(self, sock: Any, address: Any) -> None:
        __tracebackhide__ = True
        if sock.family not in _INET or not isinstance(address, tuple) or len(address) < 2:
            return
        host, port = address[0], address[1]
        self.check_connect(_text(host), port if isinstance(port, int) else None)


_ABSENT: Final = object()
#: Addresses whose names the guard remembers for its report (a bound on its memory).
_MAX_NAMES: Final = 10_000


def _text(host: Any) -> str:
    return host.decode() if isinstance(host, bytes) else str(host)


def _target(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown
