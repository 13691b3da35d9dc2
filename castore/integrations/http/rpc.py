"""A recorded gRPC call: HTTP's sibling value for the ``grpc`` adapter.

A gRPC call is an HTTP/2 POST, but what a client sees of it is not an HTTP response: a
status code and details, initial and trailing metadata, and the response messages, each
one protobuf (or other) payload. :class:`RpcAnswer` keeps exactly that, so a replay hands
the client the same messages at the same boundaries, and a recording diffs as readable
fields. The request side is an ordinary :class:`~castore.integrations.http.exchange.HttpRequest`
(method ``GRPC``, URL ``grpc://host:port/package.Service/Method``), so keys, repeats,
``match_on``, ``ignore_hosts`` and the miss message are HTTP's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: Status codes that say the call never got an answer (the server is down or too slow,
#: the client gave up): raised to the client while recording, never stored, as a refused
#: HTTP connection is not.
UNANSWERED_CODES: Final = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})

MetadataPairs = list[tuple[str, str | bytes]]


@dataclass(slots=True)
class RpcAnswer:
    """A finished gRPC call as the client saw it.

    Stored as a plain dict (:meth:`to_value`): ``grpc_code`` (the status code's name,
    ``"OK"``, ``"NOT_FOUND"``…), ``details``, ``initial_metadata`` and
    ``trailing_metadata`` (lists of [name, value] pairs; ``-bin`` values as bytes),
    ``messages`` (each response message's serialized bytes, in order: one for a unary
    call, as many as the server sent for a server-streaming one) and ``times`` (seconds
    from the call to each message).
    """

    code: str = "OK"
    details: str = ""
    initial_metadata: MetadataPairs = field(default_factory=list)
    trailing_metadata: MetadataPairs = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def without(self, secret_names: frozenset[str]) -> RpcAnswer:
        """This answer minus the metadata named in ``secret_names`` (lower case)."""
        return RpcAnswer(
            code=self.code,
            details=self.details,
            initial_metadata=_kept(self.initial_metadata, secret_names),
            trailing_metadata=_kept(self.trailing_metadata, secret_names),
            messages=list(self.messages),
            times=list(self.times),
        )

    def to_value(self) -> dict[str, Any]:
        return {
            "grpc_code": self.code,
            "details": self.details,
            "initial_metadata": [[name, value] for name, value in self.initial_metadata],
            "trailing_metadata": [[name, value] for name, value in self.trailing_metadata],
            "messages": list(self.messages),
            "times": list(self.times),
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> RpcAnswer:
        return cls(
            code=str(value.get("grpc_code") or "OK"),
            details=str(value.get("details") or ""),
            initial_metadata=_pairs(value.get("initial_metadata")),
            trailing_metadata=_pairs(value.get("trailing_metadata")),
            messages=[bytes(message) for message in value.get("messages") or []],
            times=[float(moment) for moment in value.get("times") or []],
        )


def metadata_pairs(metadata: Iterable[Any] | None) -> MetadataPairs:
    """grpc's metadata (tuples of (name, value), or ``grpc.aio.Metadata``) as pairs."""
    return [(str(name), value) for name, value in metadata or ()]


def _kept(pairs: MetadataPairs, secret_names: frozenset[str]) -> MetadataPairs:
    return [(name, value) for name, value in pairs if name.lower() not in secret_names]


def _pairs(stored: Any) -> MetadataPairs:
    return [
        (str(name), bytes(value) if isinstance(value, bytes | bytearray) else str(value))
        for name, value in stored or []
    ]
