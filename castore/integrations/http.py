"""Record and replay HTTP at the client: every httpx and httpx2 request, no wrapping.

openai 3.x and anthropic 2.x send through httpx2, older SDKs and most other clients
through httpx. While an :class:`HttpRecorder` is active, ``Client._send_single_request``
and ``AsyncClient._send_single_request`` of both packages are replaced. That method is
where a client hands a request to its transport, so a client built with a custom
transport (``httpx.Client(transport=...)``, or one an SDK builds for itself) is answered
from the store too, and nothing reaches the network on replay.

Each request becomes a key of a :class:`~castore.Recorder` (the test module's namespace,
with its modes, ``RECORD_FIXTURES``, CI behaviour and session report):

* **The key** is the method and URL (scheme, host, path, query without secret
  parameters) plus the body, a JSON body canonically (key order, whitespace and ``0`` vs
  ``0.0`` do not count), and only the headers of an allow-list (``match_headers``).
  The same request repeated in a test replays its responses in recorded order
  (``key``, ``key#2``, ``key#3``…, as ``castore import`` names VCR.py repeats).
* **Secrets never reach the store.** Request headers are not stored at all. Response
  headers named in ``drop_headers`` (cookies, request ids that identify an org…) and
  query parameters named in ``drop_query`` (``key``, ``api_key``…) are dropped before
  anything is written, and the recorder's ``redact`` hook runs over what is stored.
* **Bodies are stored decoded**, chunk by chunk: gzip, deflate, br and zstd responses are
  kept as the bytes they decode to (so dedup and the store's own zstd work on them) and
  replayed without a content encoding. A streamed response (server-sent events, chunked)
  replays with the recorded chunk boundaries, so the SDK's stream parser sees what it saw
  live; ``pace=1.0`` also reproduces the recorded timing (scaled by the factor).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from castore import Recorder, request_key

#: Response headers never stored: they set cookies or describe the encoding of a body
#: castore stores decoded.
DEFAULT_DROP_HEADERS: Final = frozenset(
    {
        "set-cookie",
        "cookie",
        "authorization",
        "x-api-key",
        "api-key",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "x-goog-api-key",
    }
)
#: Headers that describe how the body travelled, not what it is: recomputed on replay.
_TRANSPORT_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})
#: Query parameters that carry credentials (google-genai sends ``?key=``).
DEFAULT_DROP_QUERY: Final = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"}
)
#: The parts of a request its key is made of, by default all: ``match_on`` picks some.
MATCH_PARTS: Final = ("method", "scheme", "url", "query", "body", "headers")
#: The packages whose clients are intercepted, when they are installed.
CLIENT_PACKAGES: Final = ("httpx", "httpx2")
#: How much of a request body a recording's metadata keeps (for the nearest-key hints):
#: this many JSON leaves, each string cut to BODY_SUMMARY characters.
MAX_LEAVES: Final = 40
BODY_SUMMARY: Final = 300

_active_lock = threading.Lock()
_active: list[HttpRecorder] = []


class HttpRecorder:
    """Answers httpx/httpx2 requests from ``recorder`` while :meth:`active`."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        match_headers: Iterable[str] = (),
        drop_headers: Iterable[str] = DEFAULT_DROP_HEADERS,
        drop_query: Iterable[str] = DEFAULT_DROP_QUERY,
        key: Callable[[Any], str] | None = None,
        pace: float | None = None,
        match_on: Iterable[str] = MATCH_PARTS,
        redact_body: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.recorder = recorder
        self.match_on = frozenset(match_on)
        unknown = self.match_on - set(MATCH_PARTS)
        if unknown:
            raise ValueError(f"match_on: unknown part(s) {sorted(unknown)}; parts: {MATCH_PARTS}")
        self.match_headers = frozenset(name.lower() for name in match_headers)
        self.drop_headers = frozenset(name.lower() for name in drop_headers)
        self.drop_query = frozenset(name.lower() for name in drop_query)
        self.custom_key = key
        self.pace = pace
        #: Runs over each recorded response chunk and over the request body before any
        #: of it is kept (the key's hash is of the body as sent: it reveals nothing).
        self.redact_body = redact_body
        self._seen: dict[str, int] = {}
        self._seen_lock = threading.Lock()

    # --- keys --------------------------------------------------------------------------

    def key_for(self, request: Any) -> tuple[str, dict[str, Any]]:
        """The recording key of ``request`` (repeats numbered) and its metadata."""
        method = request.method.upper()
        url = request.url
        query = sorted(
            (name, value)
            for name, value in parse_qsl(url.query.decode(), keep_blank_values=True)
            if name.lower() not in self.drop_query
        )
        where = f"{url.host}{url.path}"
        body = _canonical_body(request)
        headers = {
            name.lower(): value
            for name, value in request.headers.items()
            if name.lower() in self.match_headers
        }
        if self.custom_key is not None:
            base = self.custom_key(request)
        else:
            parts = {
                "method": method,
                "scheme": url.scheme,
                "url": where,
                "query": query,
                "body": body,
                "headers": headers,
            }
            counted = {name: part for name, part in parts.items() if name in self.match_on}
            base = request_key(f"{method} {where}", exclude=(), **counted)
        with self._seen_lock:
            count = self._seen.get(base, 0) + 1
            self._seen[base] = count
        key = base if count == 1 else f"{base}#{count}"
        metadata: dict[str, Any] = {
            "method": method,
            "url": f"{url.scheme}://{where}" + (f"?{urlencode(query)}" if query else ""),
        }
        if self.redact_body is not None and request.content:
            body = _canonical_body(request, self.redact_body(request.content))
        if isinstance(body, dict | list):
            metadata.update(_leaves(body, "body"))
        elif body is not None:
            metadata["body"] = _summary(body)
        return key, metadata

    # --- interception ------------------------------------------------------------------

    @contextlib.contextmanager
    def active(self) -> Iterator[HttpRecorder]:
        """Answer every httpx and httpx2 request from the store inside the block."""
        with _active_lock:
            if _active:
                raise RuntimeError("another castore HTTP recorder is already active")
            _active.append(self)
            patched = [_patch(module) for module in _client_modules()]
        try:
            yield self
        finally:
            with _active_lock:
                for undo in patched:
                    undo()
                _active.clear()

    def send(self, module: ModuleType, client: Any, request: Any, live: Callable[[], Any]) -> Any:
        """The sync client's send: a replayed (or just recorded) response."""
        key, metadata = self.key_for(request)
        recorded = self.recorder.get_or_record_sync(
            key, lambda: self._record_sync(live), metadata=metadata
        )
        return self._response(module, client, request, recorded, asynchronous=False)

    async def send_async(
        self, module: ModuleType, client: Any, request: Any, live: Callable[[], Any]
    ) -> Any:
        key, metadata = self.key_for(request)

        async def record() -> dict[str, Any]:
            return await self._record_async(live)

        recorded = await self.recorder.get_or_record(key, record, metadata=metadata)
        return self._response(module, client, request, recorded, asynchronous=True)

    # --- recording and replaying -------------------------------------------------------

    def _record_sync(self, live: Callable[[], Any]) -> dict[str, Any]:
        """Send, and read the body whole; chunk times count from the request, so that
        pacing also reproduces the wait for the first byte."""
        started = time.perf_counter()
        response = live()
        chunks, times = [], []
        try:
            for chunk in response.iter_bytes():  # decoded, at the transport's boundaries
                if chunk:  # a chunk and its time are kept together (pacing pairs them)
                    chunks.append(bytes(chunk))
                    times.append(round(time.perf_counter() - started, 4))
        finally:
            response.close()
        return self._recorded(response, chunks, times)

    async def _record_async(self, live: Callable[[], Any]) -> dict[str, Any]:
        started = time.perf_counter()
        response = await live()
        chunks, times = [], []
        try:
            async for chunk in response.aiter_bytes():
                if chunk:
                    chunks.append(bytes(chunk))
                    times.append(round(time.perf_counter() - started, 4))
        finally:
            await response.aclose()
        return self._recorded(response, chunks, times)

    def _recorded(self, response: Any, chunks: list[bytes], times: list[float]) -> dict[str, Any]:
        headers = [
            [name, value]
            for name, value in response.headers.multi_items()
            if name.lower() not in self.drop_headers and name.lower() not in _TRANSPORT_HEADERS
        ]
        return {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "http_version": response.http_version,
            "headers": headers,
            "chunks": [self._redacted(chunk) for chunk in chunks],
            "times": times,
        }

    def _redacted(self, chunk: bytes) -> bytes:
        return chunk if self.redact_body is None else self.redact_body(chunk)

    def _response(
        self, module: ModuleType, client: Any, request: Any, recorded: Any, *, asynchronous: bool
    ) -> Any:
        chunks = [bytes(chunk) for chunk in recorded.get("chunks", [])]
        times = list(recorded.get("times") or [])
        stream = _stream_class(module, asynchronous=asynchronous)(chunks, times, self.pace)
        response = module.Response(
            recorded["status"],
            headers=[(name, value) for name, value in recorded.get("headers", [])],
            stream=stream,
            request=request,
            extensions={
                "http_version": str(recorded.get("http_version", "HTTP/1.1")).encode(),
                "reason_phrase": str(recorded.get("reason", "")).encode(),
            },
        )
        response.elapsed = dt.timedelta(seconds=times[-1] if times else 0.0)
        client.cookies.extract_cookies(response)
        return response


def _canonical_body(request: Any, content: bytes | None = None) -> Any:
    if content is None:
        content = request.content  # the SDKs send bytes bodies, read already
    if not content:
        return None
    content_type = request.headers.get("content-type", "")
    if "json" in content_type or content[:1] in (b"{", b"["):
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode()
    except UnicodeDecodeError:
        return content


def _leaves(value: Any, path: str) -> dict[str, Any]:
    """A JSON body as ``{"body.messages[0].content": "hello", …}``: a missing recording's
    nearest keys then name the very field that differs. At most :data:`MAX_LEAVES`,
    strings cut to :data:`BODY_SUMMARY` characters."""
    found: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending and len(found) < MAX_LEAVES:
        where, item = pending.pop(0)
        if isinstance(item, dict):
            pending[:0] = [(f"{where}.{key}", member) for key, member in item.items()]
        elif isinstance(item, list):
            pending[:0] = [(f"{where}[{n}]", member) for n, member in enumerate(item)]
        else:
            found[where] = _summary(item) if isinstance(item, str) else item
    return found


def _summary(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return f"<{len(body)} bytes>"
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= BODY_SUMMARY else text[: BODY_SUMMARY - 1] + "…"


def _client_modules() -> list[ModuleType]:
    found = []
    for name in CLIENT_PACKAGES:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def _patch(module: ModuleType) -> Callable[[], None]:
    """Route ``module``'s clients through the active recorder; returns the undo."""
    sync_original = module.Client._send_single_request
    async_original = module.AsyncClient._send_single_request

    def send(client: Any, request: Any) -> Any:
        __tracebackhide__ = True
        return _active[0].send(module, client, request, lambda: sync_original(client, request))

    async def send_async(client: Any, request: Any) -> Any:
        __tracebackhide__ = True
        return await _active[0].send_async(
            module, client, request, lambda: async_original(client, request)
        )

    module.Client._send_single_request = send
    module.AsyncClient._send_single_request = send_async

    def undo() -> None:
        module.Client._send_single_request = sync_original
        module.AsyncClient._send_single_request = async_original

    return undo


_stream_classes: dict[tuple[str, bool], type] = {}


class _Paced:
    """Recorded chunks, each with how long to wait before it (none unless ``pace``)."""

    def __init__(self, chunks: list[bytes], times: list[float], pace: float | None) -> None:
        self._chunks, self._times, self._pace = chunks, times, pace

    def schedule(self) -> Iterator[tuple[float, bytes]]:
        """(seconds to wait, chunk), the wait computed when the chunk is due."""
        started = time.perf_counter()
        for position, chunk in enumerate(self._chunks):
            wait = 0.0
            if self._pace and position < len(self._times):
                wait = self._times[position] * self._pace - (time.perf_counter() - started)
            yield wait, chunk


def _stream_class(module: ModuleType, *, asynchronous: bool) -> type:
    """A replayed body for ``module`` (httpx or httpx2): its own byte-stream base class,
    so the client treats it as any response stream; made once per module and kind."""
    found = _stream_classes.get((module.__name__, asynchronous))
    if found is not None:
        return found
    if asynchronous:

        class AsyncReplayedStream(_Paced, module.AsyncByteStream):  # type: ignore[name-defined,misc]
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for wait, chunk in self.schedule():
                    if wait > 0:
                        await asyncio.sleep(wait)
                    yield chunk

        found = AsyncReplayedStream
    else:

        class ReplayedStream(_Paced, module.SyncByteStream):  # type: ignore[name-defined,misc]
            def __iter__(self) -> Iterator[bytes]:
                for wait, chunk in self.schedule():
                    if wait > 0:
                        time.sleep(wait)
                    yield chunk

        found = ReplayedStream
    _stream_classes[(module.__name__, asynchronous)] = found
    return found
