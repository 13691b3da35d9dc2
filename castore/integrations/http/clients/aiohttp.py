"""aiohttp: every ``ClientSession`` request, through a castore client middleware.

While castore is active, ``ClientSession._request`` adds castore's middleware last in the
chain (aiohttp 3.12+), so it sits where the request leaves for the connector: the user's
and the SDK's own middlewares run as they would live, redirects are recorded hop by hop,
and on replay no connection is opened. google-genai's async client, aiobotocore, the Azure
SDKs and litellm send through here when aiohttp is installed.

A replayed response is aiohttp's own ``ClientResponse`` (or the session's response class)
whose ``content`` is a ``StreamReader`` fed one recorded chunk each time a reader waits for
data. So ``iter_any()`` yields the recorded chunks, ``iter_chunks()`` the recorded HTTP
chunks, and ``readline()`` (how SSE parsers read) lines across them, as live.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType, SimpleNamespace
from typing import Any, Final

from castore.errors import MissingRecordingError, StaleRecordingError
from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.misses import as_client_error
from castore.integrations.http.pacing import schedule
from castore.integrations.http.recorder import HttpRecorder, Stopwatch, active_recorder

PACKAGES: Final = ("aiohttp",)
#: The replayed body's buffer limit, aiohttp's own default.
_LIMIT: Final = 2**16


def patch(module: ModuleType) -> Callable[[], None]:
    session_class = module.ClientSession
    original = session_class._request
    if "middlewares" not in inspect.signature(original).parameters:
        warnings.warn(
            f"castore records aiohttp requests from aiohttp 3.12 on (found "
            f"{getattr(module, '__version__', '?')}): this session's aiohttp requests are "
            "not recorded",
            stacklevel=2,
        )
        return lambda: None
    middleware = _middleware(module)

    async def _request(session: Any, method: str, url: Any, **options: Any) -> Any:
        __tracebackhide__ = True
        if active_recorder() is not None:
            chain = options.get("middlewares")
            chain = session._middlewares if chain is None else chain
            options["middlewares"] = (*chain, middleware)
        return await original(session, method, url, **options)

    session_class._request = _request

    def undo() -> None:
        session_class._request = original

    return undo


def _middleware(module: ModuleType) -> Callable[..., Any]:
    async def castore_middleware(request: Any, handler: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return await handler(request)
        neutral = HttpRequest.build(
            request.method,
            str(request.url),
            request.headers.items(),
            _body_bytes(module, request.body),
            client="aiohttp",
        )
        if http.passes_through(neutral):
            return await handler(request)

        async def live() -> HttpAnswer:
            stopwatch = Stopwatch()
            return await _read(await handler(request), stopwatch)

        try:
            answer = await http.answer_async(neutral, live)
        except (MissingRecordingError, StaleRecordingError) as miss:
            raise _connector_error(module, miss, request) from None
        return _response(module, http, request, answer)

    return castore_middleware


def _body_bytes(module: ModuleType, body: Any) -> bytes:
    """The request body as sent; a streamed upload (a file, a generator) is named by its
    kind rather than read, since reading it would leave nothing to send."""
    if not body:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, module.payload.BytesPayload):
        return bytes(body._value)
    return f"<{type(body).__name__} body>".encode()


async def _read(response: Any, stopwatch: Stopwatch) -> HttpAnswer:
    """Read a live response whole, one recorded chunk per HTTP chunk the server sent
    (or per piece that arrived, for a body that is not chunked)."""
    version = response.version
    answer = HttpAnswer(
        status=response.status,
        reason=response.reason or "",
        http_version=f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1",
        headers=list(response.headers.items()),
    )
    pending = b""
    try:
        async for data, end_of_chunk in response.content.iter_chunks():
            pending += data
            if (end_of_chunk or not response.content._http_chunk_splits) and pending:
                answer.chunks.append(pending)
                answer.times.append(stopwatch.lap())
                pending = b""
        if pending:
            answer.chunks.append(pending)
            answer.times.append(stopwatch.lap())
    finally:
        response.release()
    return answer


def _connector_error(module: ModuleType, miss: Exception, request: Any) -> BaseException:
    def init(instance: Any, message: str) -> None:
        cause = ConnectionRefusedError(errno.ECONNREFUSED, message)
        module.ClientConnectorError.__init__(instance, request.connection_key, cause)

    return as_client_error(miss, module.ClientConnectorError, init)  # type: ignore[arg-type]


def _response(module: ModuleType, http: HttpRecorder, request: Any, answer: HttpAnswer) -> Any:
    loop = asyncio.get_running_loop()
    response = request.response_class(
        request.method,
        request.original_url,
        writer=None,
        continue100=None,
        timer=None,
        request_info=request.request_info,
        traces=[],
        loop=loop,
        session=request._session,
        stream_writer=SimpleNamespace(output_size=len(_body_bytes(module, request.body))),
    )
    major, _, minor = answer.http_version.removeprefix("HTTP/").partition(".")
    response.version = module.HttpVersion(int(major or 1), int(minor or 1))
    response.status = answer.status
    response.reason = answer.reason
    import multidict  # noqa: PLC0415 - aiohttp's own dependency, there when aiohttp is

    headers = multidict.CIMultiDict(answer.headers)
    response._headers = multidict.CIMultiDictProxy(headers)
    response._raw_headers = tuple((name.encode(), value.encode()) for name, value in answer.headers)
    cookies = headers.getall("set-cookie", ())
    if cookies:
        response._raw_cookie_headers = tuple(cookies)
    content = _replayed_reader_class(module)(schedule(answer.chunks, answer.times, http.pace), loop)
    response.content = content
    response._closed = False
    content.on_eof(response._response_eof)
    return response


_reader_classes: dict[str, type] = {}


class _NoProtocol:
    """What a ``StreamReader`` asks of its protocol: there is no connection to pause."""

    connected = True

    def pause_reading(self, *args: Any, **kwargs: Any) -> None:
        pass

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        pass


def _replayed_reader_class(module: ModuleType) -> type:
    """A ``StreamReader`` that, whenever a reader waits for data, is fed the next recorded
    chunk (after its pacing wait), and its end once they are all read."""
    found = _reader_classes.get(module.__name__)
    if found is not None:
        return found

    class ReplayedStreamReader(module.StreamReader):  # type: ignore[name-defined,misc]
        def __init__(self, schedule: Iterator[tuple[float, bytes]], loop: Any) -> None:
            super().__init__(_NoProtocol(), _LIMIT, loop=loop)
            self._castore_schedule = schedule

        async def _wait(self, func_name: str) -> None:
            step = next(self._castore_schedule, None)
            if step is None:
                self.feed_eof()
                return
            wait, chunk = step
            if wait > 0:
                await asyncio.sleep(wait)
            self.begin_http_chunk_receiving()
            self.feed_data(chunk)
            self.end_http_chunk_receiving()

    _reader_classes[module.__name__] = ReplayedStreamReader
    return ReplayedStreamReader
