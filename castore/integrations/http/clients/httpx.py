"""httpx and httpx2: ``Client._send_single_request`` and ``AsyncClient._send_single_request``.

That method is where a client hands a request to its transport, so a client built with a
custom transport (``httpx.Client(transport=...)``, one an SDK builds for itself, openai's
aiohttp client) is answered from the store too. openai 3.x and anthropic 2.x send through
httpx2, older SDKs, google-genai's sync client and most others through httpx.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any, Final

from castore.errors import MissingRecordingError, StaleRecordingError
from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.misses import as_client_error
from castore.integrations.http.pacing import paced, paced_async
from castore.integrations.http.recorder import HttpRecorder, Stopwatch, active_recorder

PACKAGES: Final = ("httpx", "httpx2")


def patch(module: ModuleType) -> Callable[[], None]:
    sync_original = module.Client._send_single_request
    async_original = module.AsyncClient._send_single_request

    def send(client: Any, request: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return sync_original(client, request)
        neutral = _neutral(module, request)
        if http.passes_through(neutral):
            return sync_original(client, request)

        def live() -> HttpAnswer:
            stopwatch = Stopwatch()
            return _read_sync(sync_original(client, request), stopwatch)

        try:
            answer = http.answer(neutral, live)
        except (MissingRecordingError, StaleRecordingError) as miss:
            raise _connect_error(module, miss, request) from None
        return _response(module, http, client, request, answer, asynchronous=False)

    async def send_async(client: Any, request: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return await async_original(client, request)
        neutral = _neutral(module, request)
        if http.passes_through(neutral):
            return await async_original(client, request)

        async def live() -> HttpAnswer:
            stopwatch = Stopwatch()
            return await _read_async(await async_original(client, request), stopwatch)

        try:
            answer = await http.answer_async(neutral, live)
        except (MissingRecordingError, StaleRecordingError) as miss:
            raise _connect_error(module, miss, request) from None
        return _response(module, http, client, request, answer, asynchronous=True)

    module.Client._send_single_request = send
    module.AsyncClient._send_single_request = send_async

    def undo() -> None:
        module.Client._send_single_request = sync_original
        module.AsyncClient._send_single_request = async_original

    return undo


def _neutral(module: ModuleType, request: Any) -> HttpRequest:
    return HttpRequest.build(
        request.method,
        str(request.url),
        request.headers.multi_items(),
        request.content,  # the SDKs send bytes bodies, read already
        client=module.__name__,
    )


def _connect_error(module: ModuleType, miss: Exception, request: Any) -> BaseException:
    def init(instance: Any, message: str) -> None:
        module.ConnectError.__init__(instance, message, request=request)

    return as_client_error(miss, module.ConnectError, init)  # type: ignore[arg-type]


def _read_sync(response: Any, stopwatch: Stopwatch) -> HttpAnswer:
    answer = _answer_of(response)
    try:
        for chunk in response.iter_bytes():  # decoded, at the transport's boundaries
            if chunk:  # a chunk and its time are kept together (pacing pairs them)
                answer.chunks.append(bytes(chunk))
                answer.times.append(stopwatch.lap())
    finally:
        response.close()
    return answer


async def _read_async(response: Any, stopwatch: Stopwatch) -> HttpAnswer:
    answer = _answer_of(response)
    try:
        async for chunk in response.aiter_bytes():
            if chunk:
                answer.chunks.append(bytes(chunk))
                answer.times.append(stopwatch.lap())
    finally:
        await response.aclose()
    return answer


def _answer_of(response: Any) -> HttpAnswer:
    return HttpAnswer(
        status=response.status_code,
        reason=response.reason_phrase,
        http_version=response.http_version,
        headers=list(response.headers.multi_items()),
    )


def _response(
    module: ModuleType,
    http: HttpRecorder,
    client: Any,
    request: Any,
    answer: HttpAnswer,
    *,
    asynchronous: bool,
) -> Any:
    stream = _stream_class(module, asynchronous=asynchronous)(
        answer.chunks, answer.times, http.pace
    )
    response = module.Response(
        answer.status,
        headers=answer.headers,
        stream=stream,
        request=request,
        extensions={
            "http_version": answer.http_version.encode(),
            "reason_phrase": answer.reason.encode(),
        },
    )
    response.elapsed = dt.timedelta(seconds=answer.times[-1] if answer.times else 0.0)
    client.cookies.extract_cookies(response)
    return response


_stream_classes: dict[tuple[str, bool], type] = {}


class _Replayed:
    def __init__(self, chunks: list[bytes], times: list[float], pace: float | None) -> None:
        self._chunks, self._times, self._pace = chunks, times, pace


def _stream_class(module: ModuleType, *, asynchronous: bool) -> type:
    """A replayed body for ``module`` (httpx or httpx2): its own byte-stream base class,
    so the client treats it as any response stream; made once per module and kind."""
    found = _stream_classes.get((module.__name__, asynchronous))
    if found is not None:
        return found
    if asynchronous:

        class AsyncReplayedStream(_Replayed, module.AsyncByteStream):  # type: ignore[name-defined,misc]
            def __aiter__(self) -> AsyncIterator[bytes]:
                return paced_async(self._chunks, self._times, self._pace)

        found = AsyncReplayedStream
    else:

        class ReplayedStream(_Replayed, module.SyncByteStream):  # type: ignore[name-defined,misc]
            def __iter__(self) -> Iterator[bytes]:
                return paced(self._chunks, self._times, self._pace)

        found = ReplayedStream
    _stream_classes[(module.__name__, asynchronous)] = found
    return found
