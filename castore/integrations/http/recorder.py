"""The HTTP recorder: every client's requests answered from one castore :class:`Recorder`.

An adapter hands over an :class:`HttpRequest` and a way to send it for real; the
recorder makes the key, replays the recorded :class:`HttpAnswer`, or, in a recording mode,
sends the request and keeps the answer with its secrets dropped and its bodies redacted.
The lookup itself is the recorder's (``get_or_record``), so HTTP recordings have the same
modes, ``RECORD_FIXTURES``, CI behaviour, locks, namespaces and report as any other.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Final

from castore import HostList, Recorder
from castore.errors import MissingRecordingError, RetriedMissError, StaleRecordingError
from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.keys import (
    DEFAULT_DROP_QUERY,
    MATCH_PARTS,
    NumberedKey,
    RequestKeys,
)
from castore.integrations.http.patching import activated, live_call
from castore.integrations.http.patching import active as _active

#: Response headers never stored: they set cookies or carry credentials and org ids.
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
        "x-amz-security-token",
    }
)
#: Headers that describe how the body travelled, not what it is: recomputed on replay.
TRANSPORT_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})

LiveSync = Callable[[], HttpAnswer]
LiveAsync = Callable[[], Awaitable[HttpAnswer]]


class HttpRecorder:
    """Answers every HTTP request made through a supported client from ``recorder`` while
    :meth:`active`: httpx and httpx2, aiohttp, requests and urllib3, botocore (boto3)."""

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
        ignore_hosts: Iterable[str] = (),
        test: str | None = None,
    ) -> None:
        self.recorder = recorder
        self.keys = RequestKeys(
            match_on=match_on,
            match_headers=match_headers,
            drop_query=drop_query,
            custom=key,
            redact_body=redact_body,
            test=test,
        )
        self.drop_headers = frozenset(name.lower() for name in drop_headers)
        self.pace = pace
        #: Runs over each recorded response chunk and over the request body before any
        #: of it is kept (the key's hash is of the body as sent: it reveals nothing).
        self.redact_body = redact_body
        #: Hosts whose requests are neither recorded nor replayed: they go out as they
        #: would without castore (and meet the network guard, if one is on).
        self.ignore_hosts = HostList(ignore_hosts)
        #: Error answers (4xx, 5xx) recorded while active: ``"404 POST host/path"``.
        self.error_answers: list[str] = []
        self._errors_lock = threading.Lock()
        #: Keys (before repeat numbers) whose recording was missing: their miss message.
        self._missed: dict[str, str] = {}

    @property
    def match_on(self) -> frozenset[str]:
        return self.keys.match_on

    @property
    def match_headers(self) -> frozenset[str]:
        return self.keys.match_headers

    @property
    def drop_query(self) -> frozenset[str]:
        return self.keys.drop_query

    def key_for(self, request: HttpRequest) -> tuple[str, dict[str, Any]]:
        """The recording key of ``request`` (repeats numbered) and its metadata."""
        return self.keys.key_for(request)

    # --- activation ----------------------------------------------------------------------

    @contextlib.contextmanager
    def active(self) -> Iterator[HttpRecorder]:
        """Answer every supported client's requests from the store inside the block."""
        with activated(self):
            yield self

    def passes_through(self, request: HttpRequest) -> bool:
        """True for a request castore leaves alone (``ignore_hosts``)."""
        return self.ignore_hosts.matches(request.url.host, request.url.port)

    # --- answering ------------------------------------------------------------------------

    def answer(self, request: HttpRequest, live: LiveSync) -> HttpAnswer:
        """The recorded answer to ``request``; in a recording mode ``live`` sends it (and
        reads the whole answer, chunk by chunk) when there is none."""
        __tracebackhide__ = True
        return HttpAnswer.from_value(self.recorded(request, lambda: self._stored(request, live())))

    async def answer_async(self, request: HttpRequest, live: LiveAsync) -> HttpAnswer:
        __tracebackhide__ = True

        async def record() -> dict[str, Any]:
            return self._stored(request, await live())

        return HttpAnswer.from_value(await self.recorded_async(request, record))

    def recorded(
        self, request: HttpRequest, record: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The stored value that answers ``request``; in a recording mode ``record`` makes
        it (a real call: nested clients pass through). :meth:`answer` stores an
        :class:`HttpAnswer`; adapters whose answers are not HTTP (gRPC calls, websocket
        conversations) store their own value under the same keys, modes and report."""
        __tracebackhide__ = True
        numbered = self._numbered(request)

        def live() -> dict[str, Any]:
            with live_call():
                return record()

        try:
            value = self.recorder.get_or_record_sync(numbered.key, live, metadata=numbered.metadata)
        except Exception as error:
            self._unanswered(numbered, error)
            raise
        return value  # type: ignore[no-any-return]

    async def recorded_async(
        self, request: HttpRequest, record: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """The async twin of :meth:`recorded`."""
        __tracebackhide__ = True
        numbered = self._numbered(request)

        async def live() -> dict[str, Any]:
            with live_call():
                return await record()

        try:
            value = await self.recorder.get_or_record(
                numbered.key, live, metadata=numbered.metadata
            )
        except Exception as error:
            self._unanswered(numbered, error)
            raise
        return value  # type: ignore[no-any-return]

    def note_error_answer(self, status: str, request: HttpRequest) -> None:
        """An error answer recorded (an HTTP 4xx or 5xx, a gRPC status other than OK),
        for the session report: ``"404 POST host/path"``."""
        with self._errors_lock:
            self.error_answers.append(f"{status} {request.method} {request.where}")

    def _numbered(self, request: HttpRequest) -> NumberedKey:
        """The request's key; a retry of a request that already missed in this test
        stops here (:class:`RetriedMissError`): the test fails on the miss anyway, and an
        SDK's retry loop would otherwise back off for seconds before it gives up."""
        numbered = self.keys.numbered(request)
        missed = self._missed.get(numbered.base)
        # Only where the test runs: in a library's own thread (a background fetch) a
        # BaseException would kill the thread instead of stopping a retry loop.
        if missed is not None and threading.current_thread() is threading.main_thread():
            self.keys.give_back(numbered)
            raise RetriedMissError(
                f"the client retried {request.method} {request.where}, whose recording is "
                "missing; castore stopped its retries at once (the test fails on the miss "
                f"anyway). The miss:\n{missed}"
            )
        return numbered

    def _unanswered(self, numbered: NumberedKey, error: Exception) -> None:
        self.keys.give_back(numbered)
        if isinstance(error, MissingRecordingError | StaleRecordingError):
            self._missed[numbered.base] = str(error)

    def _stored(self, request: HttpRequest, answer: HttpAnswer) -> dict[str, Any]:
        """What is kept of a live answer: no secret headers, no transport headers (the
        body is stored decoded), each chunk redacted."""
        answer.headers = [
            (name, value)
            for name, value in answer.headers
            if name.lower() not in self.drop_headers and name.lower() not in TRANSPORT_HEADERS
        ]
        if self.redact_body is not None:
            answer.chunks = [self.redact_body(chunk) for chunk in answer.chunks]
        if answer.status >= 400:
            self.note_error_answer(str(answer.status), request)
        return answer.to_value()


def active_recorder() -> HttpRecorder | None:
    """The recorder that answers this request: the active one, unless the request is part
    of another client's real call (then it goes straight through, and the outer client
    records it)."""
    found = _active()
    return found if isinstance(found, HttpRecorder) else None


class Stopwatch:
    """Chunk times for a live answer: seconds since the request was sent (start it before
    sending), so that pacing also reproduces the wait for the first byte."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def lap(self) -> float:
        return round(time.perf_counter() - self._started, 4)
