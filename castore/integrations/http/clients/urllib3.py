"""urllib3, and the clients built on it: requests, botocore (boto3), the Azure SDKs.

``HTTPConnectionPool._make_request`` is where a pool sends one request on one connection,
after urllib3 chose the connection and before it connects: requests' ``HTTPAdapter`` and
botocore's ``URLLib3Session`` both arrive here through ``urlopen``. Everything around it
stays urllib3's own: retries and redirects (each hop recorded on its own), and on a miss
the error a refused connection raises (``NewConnectionError``), which requests turns into
its ``ConnectionError`` and botocore into its ``EndpointConnectionError``, as offline.

A replayed response is a real ``urllib3.HTTPResponse`` reading the recorded body. Its
``stream()`` (requests' ``iter_content`` and ``iter_lines``, botocore's event streams)
yields the recorded chunks, each cut at the reader's ``amt``, as a chunked response does
live; ``read(amt)`` fills ``amt`` across them, as it does live.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Final

from castore.errors import MissingRecordingError, StaleRecordingError
from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.misses import as_client_error
from castore.integrations.http.pacing import schedule
from castore.integrations.http.recorder import HttpRecorder, Stopwatch, active_recorder

PACKAGES: Final = ("urllib3",)
_READ_SIZE: Final = 2**16


def patch(module: ModuleType) -> Callable[[], None]:
    pool_class = module.connectionpool.HTTPConnectionPool
    original = pool_class._make_request

    def _make_request(pool: Any, conn: Any, method: str, url: str, *args: Any, **kw: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return original(pool, conn, method, url, *args, **kw)
        arguments = _arguments(args, kw)
        body = _body_bytes(arguments.get("body"))
        arguments["body"] = body  # read once: the live call sends these bytes
        neutral = HttpRequest.build(
            method,
            _full_url(pool, url),
            (arguments.get("headers") or {}).items(),
            body,
            client="urllib3",
        )
        if http.passes_through(neutral):
            return original(pool, conn, method, url, **arguments)

        def live() -> HttpAnswer:
            stopwatch = Stopwatch()
            sent = {**arguments, "preload_content": False, "decode_content": True}
            return _read(original(pool, conn, method, url, **sent), stopwatch)

        try:
            answer = http.answer(neutral, live)
        except (MissingRecordingError, StaleRecordingError) as miss:
            raise _connection_error(module, miss, conn) from None
        return _response(module, http, pool, (method, url, arguments), answer)

    pool_class._make_request = _make_request

    def undo() -> None:
        pool_class._make_request = original

    return undo


#: ``_make_request``'s parameters after (conn, method, url), in order.
_PARAMETERS: Final = (
    "body",
    "headers",
    "retries",
    "timeout",
    "chunked",
    "response_conn",
    "preload_content",
    "decode_content",
    "enforce_content_length",
)


def _arguments(args: tuple[Any, ...], kw: dict[str, Any]) -> dict[str, Any]:
    return {**dict(zip(_PARAMETERS, args, strict=False)), **kw}


def _full_url(pool: Any, url: str) -> str:
    if "://" in url:  # through a proxy, the request line holds the whole URL
        return url
    default_port = {"http": 80, "https": 443}.get(pool.scheme)
    port = "" if pool.port in (None, default_port) else f":{pool.port}"
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    return f"{pool.scheme}://{host}{port}{url}"


def _body_bytes(body: Any) -> bytes:
    """The body as the bytes that will be sent: str encoded, a file or an iterable read."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode() if isinstance(data, str) else bytes(data)
    if isinstance(body, Iterable):
        return b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in body)
    return bytes(body)


def _read(response: Any, stopwatch: Stopwatch) -> HttpAnswer:
    """A live response read whole and decoded: one chunk per HTTP chunk the server sent
    (or per read, for a body that is not chunked)."""
    answer = HttpAnswer(
        status=response.status,
        reason=response.reason or "",
        http_version=getattr(response, "version_string", "HTTP/1.1"),
        headers=list(response.headers.items()),
    )
    try:
        for chunk in response.stream(_READ_SIZE, decode_content=True):
            if chunk:
                answer.chunks.append(bytes(chunk))
                answer.times.append(stopwatch.lap())
    finally:
        response.release_conn()
    return answer


def _connection_error(module: ModuleType, miss: Exception, conn: Any) -> BaseException:
    error_class = module.exceptions.NewConnectionError

    def init(instance: Any, message: str) -> None:
        error_class.__init__(instance, conn, message)

    return as_client_error(miss, error_class, init)  # type: ignore[arg-type]


def _response(
    module: ModuleType,
    http: HttpRecorder,
    pool: Any,
    request: tuple[str, str, dict[str, Any]],
    answer: HttpAnswer,
) -> Any:
    """urllib3's response to ``request`` (method, url, ``_make_request``'s arguments)."""
    method, url, arguments = request
    version = 20 if answer.http_version.startswith("HTTP/2") else 11
    response = _response_class(module)(
        body=_ChunkReader(schedule(answer.chunks, answer.times, http.pace)),
        headers=module.HTTPHeaderDict(answer.headers),
        status=answer.status,
        version=version,
        version_string=answer.http_version,
        reason=answer.reason,
        preload_content=arguments.get("preload_content", True),
        decode_content=arguments.get("decode_content", True),
        original_response=None,
        pool=pool,
        connection=None,
        retries=arguments.get("retries"),
        enforce_content_length=False,
        request_method=method,
        request_url=url,
    )
    response.chunked = True  # stream() then goes through read_chunked, chunk by chunk
    return response


class _ChunkReader(io.RawIOBase):
    """The recorded chunks as a file: ``read(n)`` fills ``n`` across them (as a socket
    file does), ``read1(n)`` stops at the end of the current chunk."""

    def __init__(self, schedule: Iterator[tuple[float, bytes]]) -> None:
        self._schedule = schedule
        self._current = b""

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        step = next(self._schedule, None)
        if step is None:
            return False
        wait, self._current = step
        if wait > 0:
            time.sleep(wait)
        return True

    def read1(self, size: int = -1) -> bytes:
        while not self._current:
            if self.closed or not self._next():
                self.close()
                return b""
        cut = len(self._current) if size is None or size < 0 else size
        data, self._current = self._current[:cut], self._current[cut:]
        return data

    def read(self, size: int | None = -1) -> bytes:
        parts = []
        wanted = -1 if size is None or size < 0 else size
        while wanted != 0:
            data = self.read1(wanted)
            if not data:
                break
            parts.append(data)
            if wanted > 0:
                wanted -= len(data)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_response_classes: dict[str, type] = {}


def _response_class(module: ModuleType) -> type:
    found = _response_classes.get(module.__name__)
    if found is not None:
        return found

    class ReplayedHTTPResponse(module.HTTPResponse):  # type: ignore[name-defined,misc]
        """urllib3's response over recorded chunks (see the module's docstring)."""

        def supports_chunked_reads(self) -> bool:
            return True

        def read_chunked(
            self, amt: int | None = None, decode_content: bool | None = None
        ) -> Iterator[bytes]:
            buffered = len(self._decoded_buffer)
            if buffered:  # what an earlier read(amt) took from the chunks but did not return
                yield self._decoded_buffer.get(buffered)
            while self._fp is not None:
                data = self._fp.read1(amt or -1)
                if not data:
                    break
                self._fp_bytes_read += len(data)
                yield data
            self.release_conn()

    _response_classes[module.__name__] = ReplayedHTTPResponse
    return ReplayedHTTPResponse
