"""A request's recording key and the metadata kept beside it.

The key is the method and ``host/path`` plus a hash of the parts that count
(``match_on``): scheme, the query without secret parameters, the body in canonical form
(a JSON body by value: key order, whitespace and ``0`` vs ``0.0`` do not count) and the
headers of an allow-list. The same request repeated in a test replays its answers in
recorded order (``key``, ``key#2``…, as ``castore import`` names VCR.py's repeats).

The metadata names the request in readable form (method, URL, the body's JSON leaves), so a
missing recording's nearest keys say which field differs. Every client's requests get the
same keys: a test may move from requests to httpx without re-recording.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from castore import request_key, request_summary
from castore.integrations.http.exchange import HttpRequest

#: The parts of a request its key is made of, by default all: ``match_on`` picks some.
MATCH_PARTS: Final = ("method", "scheme", "url", "query", "body", "headers")
#: Query parameters that carry credentials (google-genai sends ``?key=``).
DEFAULT_DROP_QUERY: Final = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"}
)


@dataclass(frozen=True, slots=True)
class NumberedKey:
    base: str
    """The key of the request itself, before repeats are numbered."""
    number: int
    key: str
    metadata: dict[str, Any]
    endpoint: tuple[str, str] = ("", "")
    """(method, ``host/path``)."""
    call: int = 0
    """Its place among the test's requests to the endpoint, from 1."""


class RequestKeys:
    """Keys for one test's requests: the counter of repeats lives here."""

    def __init__(
        self,
        *,
        match_on: Iterable[str],
        match_headers: Iterable[str],
        drop_query: Iterable[str],
        custom: Callable[[Any], str] | None,
        redact_body: Callable[[bytes], bytes] | None,
        test: str | None = None,
    ) -> None:
        self.match_on = frozenset(match_on)
        unknown = self.match_on - set(MATCH_PARTS)
        if unknown:
            raise ValueError(f"match_on: unknown part(s) {sorted(unknown)}; parts: {MATCH_PARTS}")
        self.match_headers = frozenset(name.lower() for name in match_headers)
        self.drop_query = frozenset(name.lower() for name in drop_query)
        self.custom = custom
        self.redact_body = redact_body
        #: The test whose requests these are (its node id): with the order of a request
        #: among the test's requests to one endpoint, it names the request's slot, which
        #: ``castore diff`` follows when a changed request gets a new key.
        self.test = test
        self._seen: dict[str, int] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def query(self, request: HttpRequest) -> list[tuple[str, str]]:
        """The query's parameters, secret ones left out, sorted."""
        return sorted(
            (name, value)
            for name, value in request.url.params()
            if name.lower() not in self.drop_query
        )

    def key_for(self, request: HttpRequest) -> tuple[str, dict[str, Any]]:
        """The recording key of ``request`` (repeats numbered) and its metadata."""
        numbered = self.numbered(request)
        return numbered.key, numbered.metadata

    def numbered(self, request: HttpRequest) -> NumberedKey:
        """The key of ``request`` and its place among repeats (see :meth:`give_back`)."""
        query = self.query(request)
        body = canonical_body(request.headers.get("content-type", ""), request.content)
        if self.custom is not None:
            base = self.custom(request)
        else:
            headers = {
                name.lower(): value
                for name, value in request.headers.pairs()
                if name.lower() in self.match_headers
            }
            parts = {
                "method": request.method,
                "scheme": request.url.scheme,
                "url": request.where,
                "query": query,
                "body": body,
                "headers": headers,
            }
            counted = {name: part for name, part in parts.items() if name in self.match_on}
            base = request_key(f"{request.method} {request.where}", exclude=(), **counted)
        endpoint = (request.method, request.where)
        with self._lock:
            count = self._seen.get(base, 0) + 1
            self._seen[base] = count
            call = self._calls.get(endpoint, 0) + 1
            self._calls[endpoint] = call
        key = base if count == 1 else f"{base}#{count}"
        metadata = self.metadata(request, query, body)
        if self.test is not None:
            metadata["test"] = self.test
            metadata["call"] = call
        return NumberedKey(base, count, key, metadata, endpoint, call)

    def give_back(self, numbered: NumberedKey) -> None:
        """A request that got no answer (its real call failed, or its recording is
        missing) gives its number back: the client's retry of it takes the same key, and
        a request retried while recording replays in order later."""
        with self._lock:
            if self._seen.get(numbered.base) == numbered.number:
                self._seen[numbered.base] = numbered.number - 1
            if self._calls.get(numbered.endpoint) == numbered.call:
                self._calls[numbered.endpoint] = numbered.call - 1

    def metadata(
        self, request: HttpRequest, query: list[tuple[str, str]], body: Any
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "method": request.method,
            "url": f"{request.url.scheme}://{request.where}"
            + (f"?{urlencode(query)}" if query else ""),
        }
        if self.redact_body is not None and request.content:
            content_type = request.headers.get("content-type", "")
            body = canonical_body(content_type, self.redact_body(request.content))
        if body is not None:
            # Its leaves, client settings (an ``api_key`` in a body) left out.
            metadata.update(request_summary(body, "body"))
        return metadata


def canonical_body(content_type: str, content: bytes) -> Any:
    """A body as its key sees it: JSON parsed, text decoded, anything else as bytes."""
    if not content:
        return None
    if "json" in content_type or content[:1] in (b"{", b"["):
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode()
    except UnicodeDecodeError:
        return content
