"""Replayed gRPC calls: what grpcio's own call objects are to a live call, over a recording.

Imported by the ``grpc`` adapter only once grpcio is (its classes derive from grpcio's).

* :class:`ReplayedCall` stands for a sync call, as grpcio's rendezvous does: it is the
  ``grpc.Call`` that ``with_call`` returns, the ``grpc.Future`` that ``future`` returns,
  the iterator of a server-streaming call and, for a status other than ``OK``, the
  ``grpc.RpcError`` raised (grpcio's errors are calls too: ``error.code()``).
* :class:`ReplayedUnaryUnaryCall` and :class:`ReplayedUnaryStreamCall` are ``grpc.aio``'s
  awaitable and async-iterable calls. The lookup starts as a task when the call is made,
  as a live call's RPC does, so repeats are numbered in the order the calls were made;
  a status other than ``OK`` is raised as ``grpc.aio.AioRpcError``.

Messages are deserialized with the call's own deserializer when the client reads them,
and arrive at their recorded pace when ``pace`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any

import grpc
import grpc.aio

from castore.integrations.http.pacing import paced, paced_async
from castore.integrations.http.rpc import RpcAnswer

Deserializer = Callable[[bytes], Any] | None


def status_code(answer: RpcAnswer) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, answer.code, grpc.StatusCode.UNKNOWN)


def _deserialized(deserializer: Deserializer, data: bytes) -> Any:
    return data if deserializer is None else deserializer(data)


class ReplayedCall(grpc.RpcError, grpc.Call, grpc.Future):  # type: ignore[misc]
    """A finished sync call replayed (see the module's docstring)."""

    def __init__(self, answer: RpcAnswer, deserializer: Deserializer, pace: float | None) -> None:
        self._answer = answer
        self._deserializer = deserializer
        self._pace = pace
        self._messages: Iterator[bytes] | None = None
        self._response: list[Any] = []

    # --- grpc.Call ---------------------------------------------------------------------

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._answer.initial_metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._answer.trailing_metadata)

    def code(self) -> grpc.StatusCode:
        return status_code(self._answer)

    def details(self) -> str:
        return self._answer.details

    def debug_error_string(self) -> str:
        return f"replayed by castore: {self._answer.code} {self._answer.details}"

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False  # as grpcio's answer for a call that has terminated: not registered

    # --- grpc.Future (a unary call's) ----------------------------------------------------

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        if self._answer.code != "OK":
            raise self
        if not self._response:
            data = next(iter(paced(self._answer.messages[:1], self._answer.times, self._pace)))
            self._response.append(_deserialized(self._deserializer, data))
        return self._response[0]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return None if self._answer.code == "OK" else self

    def traceback(self, timeout: float | None = None) -> Any:
        return None if self._answer.code == "OK" else self.__traceback__

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)

    # --- a server-streaming call's iterator -----------------------------------------------

    def __iter__(self) -> ReplayedCall:
        return self

    def __next__(self) -> Any:
        if self._messages is None:
            self._messages = paced(self._answer.messages, self._answer.times, self._pace)
        data = next(self._messages, None)
        if data is not None:
            return _deserialized(self._deserializer, data)
        if self._answer.code != "OK":
            raise self
        raise StopIteration

    next = __next__

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} of RPC that terminated with:\n"
            f"\tstatus = {self.code()}\n\tdetails = {self.details()!r}\n>"
        )

    __str__ = __repr__


def aio_rpc_error(answer: RpcAnswer) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        status_code(answer),
        grpc.aio.Metadata(*answer.initial_metadata),
        grpc.aio.Metadata(*answer.trailing_metadata),
        answer.details,
        f"replayed by castore: {answer.code} {answer.details}",
    )


class _ReplayedAioCall:
    """What both ``grpc.aio`` call kinds share: the lookup task and the call's status."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        lookup: Coroutine[Any, Any, RpcAnswer],
        deserializer: Deserializer,
        pace: float | None,
    ) -> None:
        self._task = loop.create_task(lookup)
        self._deserializer = deserializer
        self._pace = pace

    async def _status(self) -> RpcAnswer:
        """The answer; for a miss, its status (awaiting the call raises the miss)."""
        try:
            return await self._task
        except grpc.aio.AioRpcError as error:
            return RpcAnswer(code=error.code().name, details=error.details() or "")

    def cancelled(self) -> bool:
        return self._task.cancelled()

    def done(self) -> bool:
        return self._task.done()

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return self._task.cancel()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._task.add_done_callback(lambda _: callback(self))

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata(*(await self._status()).initial_metadata)

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata(*(await self._status()).trailing_metadata)

    async def code(self) -> grpc.StatusCode:
        return status_code(await self._status())

    async def details(self) -> str:
        return (await self._status()).details

    async def wait_for_connection(self) -> None:
        await self._status()


class ReplayedUnaryUnaryCall(_ReplayedAioCall, grpc.aio.UnaryUnaryCall):  # type: ignore[misc]
    """A ``grpc.aio`` unary call replayed: awaiting it gives the recorded response."""

    def __await__(self) -> Generator[Any, None, Any]:
        return self._response().__await__()

    async def _response(self) -> Any:
        answer = await self._task
        if answer.code != "OK":
            raise aio_rpc_error(answer)
        async for data in paced_async(answer.messages[:1], answer.times, self._pace):
            return _deserialized(self._deserializer, data)
        raise aio_rpc_error(RpcAnswer(code="INTERNAL", details="recorded without a response"))


class ReplayedUnaryStreamCall(_ReplayedAioCall, grpc.aio.UnaryStreamCall):  # type: ignore[misc]
    """A ``grpc.aio`` server-streaming call replayed: ``async for`` or ``read()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader: AsyncIterator[Any] | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._reader is None:
            self._reader = self._messages()
        return self._reader

    async def read(self) -> Any:
        try:
            return await anext(self.__aiter__())
        except StopAsyncIteration:
            return grpc.aio.EOF

    async def _messages(self) -> AsyncIterator[Any]:
        answer = await self._task
        async for data in paced_async(answer.messages, answer.times, self._pace):
            yield _deserialized(self._deserializer, data)
        if answer.code != "OK":
            raise aio_rpc_error(answer)
