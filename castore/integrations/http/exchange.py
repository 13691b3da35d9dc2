"""The neutral model every client adapter speaks: one request, and one recorded answer.

An adapter (``clients/``) turns its client's request into an :class:`HttpRequest`, and a
recorded :class:`HttpAnswer` back into its client's response. Everything between (keys,
secrets, redaction, the lookup, what is stored) sees only these two, so a rule is written
once and holds for httpx, aiohttp, requests, urllib3 and botocore alike, as VCR.py's
``Request`` does for its stubs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from castore.integrations.http.bodies import eventstream


class Headers(Mapping[str, str]):
    """Request or response headers: case-insensitive lookup, every value kept in order.

    ``headers["Content-Type"]`` gives the first value of that name, as httpx's and
    requests' headers do; :meth:`items` lists each (name, value) pair as sent.
    """

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = tuple((str(name), str(value)) for name, value in pairs)
        first: dict[str, str] = {}
        for name, value in self._pairs:
            first.setdefault(name.lower(), value)
        self._first = first

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every (name, value), duplicates included, as sent."""
        return self._pairs

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"


@dataclass(frozen=True, slots=True)
class RequestUrl:
    """A request's URL in the parts keys are made of. Its attributes are named as httpx
    names them (``host``, ``path``, ``query``), so a custom ``key=`` function written for
    httpx requests keeps working for every client."""

    scheme: str
    host: str
    port: int | None
    path: str
    """URL-decoded, as httpx's ``URL.path``."""
    query: bytes
    """The raw query string, as httpx's ``URL.query``."""
    raw: str

    @classmethod
    def parse(cls, url: str) -> RequestUrl:
        parts = urlsplit(url)
        return cls(
            scheme=parts.scheme.lower(),
            host=(parts.hostname or "").lower(),
            port=parts.port,
            path=unquote(parts.path) or "/",
            query=parts.query.encode(),
            raw=url,
        )

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query.decode(), keep_blank_values=True)

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as every adapter hands it over: method, URL, headers and the body sent."""

    method: str
    url: RequestUrl
    headers: Headers
    content: bytes
    """The body as sent (httpx's name for it; :attr:`body` is the same bytes)."""
    client: str = ""
    """Which adapter saw it (``httpx``, ``aiohttp``, ``urllib3``…), for messages."""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        content: bytes | None,
        *,
        client: str,
    ) -> HttpRequest:
        return cls(
            method=method.upper(),
            url=RequestUrl.parse(url),
            headers=Headers(headers),
            content=content or b"",
            client=client,
        )

    @property
    def body(self) -> bytes:
        return self.content

    @property
    def where(self) -> str:
        """``host/path``: how keys, reports and messages name the endpoint (no port, so a
        loopback server on another port replays the same recordings)."""
        return f"{self.url.host}{self.url.path}"


@dataclass(slots=True)
class HttpAnswer:
    """A recorded response: status line, headers and the body as its chunks arrived.

    Stored as a plain dict (:meth:`to_value`, the form every earlier castore wrote):
    ``status``, ``reason``, ``http_version``, ``headers`` (a list of pairs), ``chunks``
    (the decoded body, one item per chunk as the client read it) and ``times`` (seconds
    from the request to each chunk). An AWS event stream is kept one event per chunk,
    decoded (``framing: "aws-eventstream"``), so a diff of two recordings reads as JSON
    and a replay hands the client the same event boundaries.
    """

    status: int
    reason: str = ""
    http_version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    @property
    def is_event_stream(self) -> bool:
        return eventstream.CONTENT_TYPE in self.header("content-type").lower()

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "http_version": self.http_version,
            "headers": [[name, content] for name, content in self.headers],
            "chunks": list(self.chunks),
            "times": list(self.times),
        }
        if self.is_event_stream:
            try:
                events, times = eventstream.split(self.chunks, self.times)
            except eventstream.EventStreamError:
                return value  # not whole messages (a cut stream): kept as the bytes read
            value["framing"] = eventstream.FRAMING
            value["chunks"] = [eventstream.decode(event) for event in events]
            value["times"] = times
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> HttpAnswer:
        chunks = value.get("chunks") or []
        if value.get("framing") == eventstream.FRAMING:
            chunks = [eventstream.encode(event) for event in chunks]
        return cls(
            status=int(value["status"]),
            reason=str(value.get("reason") or ""),
            http_version=str(value.get("http_version") or "HTTP/1.1"),
            headers=[(str(name), str(content)) for name, content in value.get("headers") or []],
            chunks=[bytes(chunk) for chunk in chunks],
            times=[float(moment) for moment in value.get("times") or []],
        )
