"""The clients ``bench.clients`` times, each making its calls as its users write them.

A scenario owns one client (made once, as a test suite's fixture would) and makes a call
the way that client's users do, reading the whole answer: the body's bytes for the plain
HTTP clients, the lines of a ``stream=True`` response, the SDK's parsed object for the
openai SDK and botocore. Async clients run on an event loop of their own, with the clock
read inside the coroutine.

:meth:`Scenario.floor` is the client with no recorder at all: while it is on, the layer
where castore and VCR.py step in answers each call from memory (httpx's transport, a
middleware innermost in aiohttp's chain, urllib3's ``_make_request``), so its time is the
client's own work on the same answer, with no network and no recording.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType, SimpleNamespace
from typing import Any

from bench.answer_server import Answer
from bench.client_payloads import Call

Around = Callable[[int], AbstractContextManager[Any]]
"""A context each call runs inside, inside the timed region (given the call's position)."""

_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-key"}


class FloorAnswers:
    """The answers the floor hands out, in call order."""

    def __init__(self) -> None:
        self._queue: deque[Answer] = deque()

    def serve(self, answers: list[Answer]) -> None:
        self._queue.extend(answers)

    def next(self) -> Answer:
        return self._queue.popleft()


class Scenario:
    """One client making one kind of call."""

    name = ""
    kind = "chat"
    #: What its users call (shown in the report).
    how = ""

    def open(self, base_url: str) -> None:
        self.base_url = base_url

    def close(self) -> None:
        pass

    def timed(self, calls: list[Call], around: Around | None = None) -> tuple[float, list[Any]]:
        """Seconds to make ``calls`` in order, and what each returned."""
        raise NotImplementedError

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        raise NotImplementedError

    def digest(self, result: Any) -> Any:
        """What the user got from a call, comparable between contestants (untimed)."""
        return result


class SyncScenario(Scenario):
    def call(self, call: Call) -> Any:
        raise NotImplementedError

    def timed(self, calls: list[Call], around: Around | None = None) -> tuple[float, list[Any]]:
        results = []
        started = time.perf_counter()
        if around is None:
            for call in calls:
                results.append(self.call(call))
        else:
            for position, call in enumerate(calls):
                with around(position):
                    results.append(self.call(call))
        return time.perf_counter() - started, results


class AsyncScenario(Scenario):
    def open(self, base_url: str) -> None:
        super().open(base_url)
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    async def call(self, call: Call) -> Any:
        raise NotImplementedError

    def timed(self, calls: list[Call], around: Around | None = None) -> tuple[float, list[Any]]:
        return self.loop.run_until_complete(self._timed(calls, around))

    async def _timed(self, calls: list[Call], around: Around | None) -> tuple[float, list[Any]]:
        results = []
        started = time.perf_counter()
        if around is None:
            for call in calls:
                results.append(await self.call(call))
        else:
            for position, call in enumerate(calls):
                with around(position):
                    results.append(await self.call(call))
        return time.perf_counter() - started, results


# --- httpx and httpx2 ------------------------------------------------------------------------


@contextmanager
def transport_floor(module: ModuleType) -> Iterator[FloorAnswers]:
    """httpx's (or httpx2's) transports answer from memory, as a ``MockTransport`` does."""
    answers = FloorAnswers()
    sync_original = module.HTTPTransport.handle_request
    async_original = module.AsyncHTTPTransport.handle_async_request

    def respond(request: Any) -> Any:
        answer = answers.next()
        return module.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )

    async def respond_async(transport: Any, request: Any) -> Any:
        return respond(request)

    module.HTTPTransport.handle_request = lambda transport, request: respond(request)
    module.AsyncHTTPTransport.handle_async_request = respond_async
    try:
        yield answers
    finally:
        module.HTTPTransport.handle_request = sync_original
        module.AsyncHTTPTransport.handle_async_request = async_original


class Httpx(SyncScenario):
    name = "httpx"
    how = "`httpx.Client.post`, `.content`"

    def open(self, base_url: str) -> None:
        import httpx  # noqa: PLC0415 - each client is imported by its own scenario

        super().open(base_url)
        self.client = httpx.Client(base_url=base_url, headers=_HEADERS)

    def close(self) -> None:
        self.client.close()

    def call(self, call: Call) -> Any:
        return self.client.post("/v1/chat/completions", content=call.raw).content

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        import httpx  # noqa: PLC0415

        return transport_floor(httpx)


class HttpxAsync(AsyncScenario):
    name = "httpx async"
    how = "`httpx.AsyncClient.post`, `.content`"

    def open(self, base_url: str) -> None:
        import httpx  # noqa: PLC0415

        super().open(base_url)
        self.client = httpx.AsyncClient(base_url=base_url, headers=_HEADERS)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        super().close()

    async def call(self, call: Call) -> Any:
        return (await self.client.post("/v1/chat/completions", content=call.raw)).content

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        import httpx  # noqa: PLC0415

        return transport_floor(httpx)


class OpenAI(SyncScenario):
    name = "openai SDK (httpx2)"
    how = "`openai.OpenAI().chat.completions.create`"

    def open(self, base_url: str) -> None:
        import openai  # noqa: PLC0415

        super().open(base_url)
        self.client = openai.OpenAI(
            base_url=base_url + "/v1", api_key="sk-bench-not-a-key", max_retries=0
        )

    def close(self) -> None:
        self.client.close()

    def call(self, call: Call) -> Any:
        extra = {k: v for k, v in call.body.items() if k not in ("model", "messages")}
        return self.client.chat.completions.create(
            model=call.body["model"], messages=call.body["messages"], extra_body=extra or None
        )

    def digest(self, result: Any) -> Any:
        return result.model_dump()

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        import httpx2  # noqa: PLC0415

        return transport_floor(httpx2)


# --- aiohttp -----------------------------------------------------------------------------------


class _NoProtocol:
    """A StreamReader's protocol, for a body already in memory."""

    connected = True
    _reading_paused = False

    def pause_reading(self, *args: Any, **kwargs: Any) -> None:
        pass

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        pass


class Aiohttp(AsyncScenario):
    name = "aiohttp"
    how = "`ClientSession.post`, `await response.read()`"

    def open(self, base_url: str) -> None:
        super().open(base_url)
        self.answers = FloorAnswers()
        self.session, self.floor_session = self.loop.run_until_complete(self._sessions())
        self.floor_on = False

    async def _sessions(self) -> tuple[Any, Any]:
        import aiohttp  # noqa: PLC0415

        plain = aiohttp.ClientSession(self.base_url, headers=_HEADERS)
        floor = aiohttp.ClientSession(
            self.base_url, headers=_HEADERS, middlewares=(self._floor_middleware,)
        )
        return plain, floor

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.floor_session.close())
        super().close()

    async def call(self, call: Call) -> Any:
        session = self.floor_session if self.floor_on else self.session
        async with session.post("/v1/chat/completions", data=call.raw) as response:
            return await response.read()

    async def _floor_middleware(self, request: Any, handler: Any) -> Any:
        """The answer in memory as aiohttp's own response, built as the least a replay
        must build (as VCR.py's and castore's do)."""
        import aiohttp  # noqa: PLC0415
        import multidict  # noqa: PLC0415

        answer = self.answers.next()
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
            stream_writer=SimpleNamespace(output_size=0),
        )
        response.version = aiohttp.HttpVersion11
        response.status = answer.status
        response.reason = answer.reason
        response._headers = multidict.CIMultiDictProxy(multidict.CIMultiDict(answer.headers))
        content = aiohttp.StreamReader(_NoProtocol(), 2**16, loop=loop)  # type: ignore[arg-type]
        content.feed_data(answer.body)
        content.feed_eof()
        response.content = content
        return response

    @contextmanager
    def _floor(self) -> Iterator[FloorAnswers]:
        self.floor_on = True
        try:
            yield self.answers
        finally:
            self.floor_on = False

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        return self._floor()


# --- urllib3, and requests and botocore over it ---------------------------------------------------


def _chunked_response_class() -> type:
    """urllib3's ``HTTPResponse`` reading a body sent in chunks one chunk at a time (each
    cut at the reader's ``amt``), as it reads a chunked body from a socket: a stream
    reader (``iter_lines``, botocore's event parser) then does the same work per chunk
    as live, where a body in one piece would be read in ``amt``-sized slices."""
    import urllib3  # noqa: PLC0415

    class ChunkedResponse(urllib3.HTTPResponse):
        chunks: list[bytes] = []  # noqa: RUF012 - set on each instance

        def supports_chunked_reads(self) -> bool:
            return True

        def read_chunked(
            self, amt: int | None = None, decode_content: bool | None = None
        ) -> Generator[bytes, None, None]:
            for chunk in self.chunks:
                step = amt or len(chunk)
                for at in range(0, len(chunk), step):
                    yield chunk[at : at + step]
            self.release_conn()

    return ChunkedResponse


@contextmanager
def pool_floor() -> Iterator[FloorAnswers]:
    """urllib3's pools answer from memory where they would send the request: a real
    ``HTTPResponse`` over the body (read chunk by chunk when it was sent in chunks), with
    the connection handed back as urllib3 does."""
    import urllib3  # noqa: PLC0415

    chunked_class = _chunked_response_class()
    answers = FloorAnswers()
    pool_class = urllib3.connectionpool.HTTPConnectionPool
    original = pool_class._make_request

    def _make_request(
        pool: Any,
        conn: Any,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        retries: Any = None,
        timeout: Any = None,
        chunked: bool = False,
        response_conn: Any = None,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> Any:
        answer = answers.next()
        if response_conn is not None:
            # The caller (requests) expects the response to hand the connection back when
            # its body is read, which a response over BytesIO never does: hand it back
            # now, or each floor run drops a pooled socket the live run opened.
            pool._put_conn(response_conn)
            response_conn = None
        response_class = chunked_class if answer.streamed else urllib3.HTTPResponse
        response = response_class(
            body=io.BytesIO(answer.body),
            headers=urllib3.HTTPHeaderDict(answer.headers),
            status=answer.status,
            version=11,
            version_string="HTTP/1.1",
            reason=answer.reason,
            preload_content=preload_content,
            decode_content=decode_content,
            original_response=None,
            pool=pool,
            connection=response_conn,
            retries=retries,
            enforce_content_length=enforce_content_length,
            request_method=method,
            request_url=url,
        )
        if answer.streamed:
            response.chunks, response.chunked = answer.chunks, True
        return response

    pool_class._make_request = _make_request  # type: ignore[assignment]
    try:
        yield answers
    finally:
        pool_class._make_request = original  # type: ignore[method-assign]


class Requests(SyncScenario):
    name = "requests"
    how = "`Session.post`, `.content`"

    def open(self, base_url: str) -> None:
        import requests  # noqa: PLC0415

        super().open(base_url)
        self.session = requests.Session()
        self.session.headers.update(_HEADERS)
        self.url = base_url + "/v1/chat/completions"

    def close(self) -> None:
        self.session.close()

    def call(self, call: Call) -> Any:
        return self.session.post(self.url, data=call.raw).content

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        return pool_floor()


class RequestsStream(Requests):
    name = "requests stream=True"
    kind = "chat-stream"
    how = "`Session.post(stream=True)`, `iter_lines()` of server-sent events"

    def call(self, call: Call) -> Any:
        with self.session.post(self.url, data=call.raw, stream=True) as response:
            return list(response.iter_lines())


class Urllib3(SyncScenario):
    name = "urllib3"
    how = "`PoolManager.request`, `.data`"

    def open(self, base_url: str) -> None:
        import urllib3  # noqa: PLC0415

        super().open(base_url)
        self.pool = urllib3.PoolManager()
        self.url = base_url + "/v1/chat/completions"

    def close(self) -> None:
        self.pool.clear()

    def call(self, call: Call) -> Any:
        return self.pool.request("POST", self.url, body=call.raw, headers=_HEADERS).data

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        return pool_floor()


class BotocoreConverse(SyncScenario):
    name = "botocore converse"
    kind = "converse"
    how = '`boto3.client("bedrock-runtime").converse`'

    def open(self, base_url: str) -> None:
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        super().open(base_url)
        self.client = boto3.client(
            "bedrock-runtime",
            region_name="us-west-2",
            endpoint_url=base_url,
            aws_access_key_id="AKIDBENCHNOTAKEY",
            aws_secret_access_key="bench-secret-not-a-key",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def close(self) -> None:
        self.client.close()

    def call(self, call: Call) -> Any:
        return self.client.converse(modelId=call.model, **call.body)

    def digest(self, result: Any) -> Any:
        return {key: value for key, value in result.items() if key != "ResponseMetadata"}

    def floor(self) -> AbstractContextManager[FloorAnswers]:
        return pool_floor()


class BotocoreConverseStream(BotocoreConverse):
    name = "botocore converse_stream"
    kind = "converse-stream"
    how = "`converse_stream`, every event of `response['stream']`"

    def call(self, call: Call) -> Any:
        return list(self.client.converse_stream(modelId=call.model, **call.body)["stream"])

    def digest(self, result: Any) -> Any:
        return result


SCENARIOS: tuple[type[Scenario], ...] = (
    Httpx,
    HttpxAsync,
    OpenAI,
    Aiohttp,
    Requests,
    RequestsStream,
    Urllib3,
    BotocoreConverse,
    BotocoreConverseStream,
)
