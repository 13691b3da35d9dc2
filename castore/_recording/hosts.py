"""Host patterns: which hosts a replaying test may reach, and which castore leaves alone.

One syntax for ``castore_allow_hosts`` (the network guard) and ``ignore_hosts`` (HTTP
recording), so a host written once means the same in both:

* a name, matched case-insensitively: ``localhost``, ``api.example.com``;
* a name with a leading wildcard: ``*.example.com`` (any subdomain, not the name itself);
* an address: ``127.0.0.1``, ``::1``, or ``[::1]``;
* a network: ``127.0.0.0/8``, ``fd00::/8``;
* any of these with a port: ``localhost:8080``, ``[::1]:443``, ``10.0.0.0/8:5432``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final, NamedTuple

from castore._storage.public_names import present_as_public

#: What a replaying test may reach when ``castore_allow_hosts`` says nothing: this machine.
LOOPBACK: Final = ("localhost", "*.localhost", "127.0.0.0/8", "::1", "0.0.0.0", "::")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class HostPattern(NamedTuple):
    text: str
    name: str | None = None
    suffix: str | None = None
    network: Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        raw = text.strip()
        if not raw:
            raise ValueError("an empty host pattern")
        host, port = _split_port(raw)
        try:
            network = ipaddress.ip_network(host.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            return cls(raw, network=network, port=port)
        lowered = host.lower().rstrip(".")
        if lowered.startswith("*."):
            return cls(raw, suffix=lowered[1:], port=port)
        if not lowered or any(char in lowered for char in "/*[] "):
            raise ValueError(f"not a host name, address or network: {text!r}")
        return cls(raw, name=lowered, port=port)

    def matches(self, host: str, port: int | None = None, *, any_port: bool = False) -> bool:
        if self.port is not None and port != self.port and not any_port:
            return False
        if self.network is not None:
            address = as_address(host)
            return address is not None and address in self.network
        lowered = host.lower().rstrip(".")
        if self.suffix is not None:
            return lowered.endswith(self.suffix)
        return lowered == self.name


class HostList:
    """Host patterns (see the module's docstring); :meth:`matches` says whether a host
    (and port) is one of them."""

    __slots__ = ("patterns",)

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        if isinstance(patterns, str):
            patterns = patterns.replace(",", " ").split()
        self.patterns = tuple(HostPattern.parse(pattern) for pattern in patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"HostList({[pattern.text for pattern in self.patterns]!r})"

    def __add__(self, other: HostList) -> HostList:
        joined = HostList()
        joined.patterns = self.patterns + other.patterns
        return joined

    def matches(self, host: str, port: int | None = None, *, any_port: bool = False) -> bool:
        """``any_port``: a pattern with a port matches the host on any port (a name lookup
        does not say which port it is for)."""
        return any(pattern.matches(host, port, any_port=any_port) for pattern in self.patterns)

    def names(self) -> list[str]:
        """The plain host names listed (what the guard resolves to learn their addresses)."""
        return [pattern.name for pattern in self.patterns if pattern.name is not None]


def as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, if it is one (a zone index such as ``%eth0`` dropped)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _split_port(text: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, or a bare host (an IPv6 address has many colons)."""
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            return text[: end + 1], int(rest[1:])
        return text, None
    head, colon, tail = text.rpartition(":")
    if colon and tail.isdigit() and ":" not in head:
        return head, int(tail)
    return text, None


present_as_public(HostList)
