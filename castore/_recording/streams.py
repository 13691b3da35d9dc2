"""What a recorded stream replays as: an object used the way SDK streams are used.

openai's and anthropic's streams are iterated, and also used as ``with stream as s:`` (or
``async with``) and closed with ``close()``. A bare generator supports only the first,
so code written from the SDKs' READMEs failed on replay (and on recording, since a
recording hands back what replays give). These give back the recorded chunks, in order,
with the same boundaries, behind those same forms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Generic, Self, TypeVar

T = TypeVar("T")


class ReplayedStream(Iterator[T], Generic[T]):
    """A recorded synchronous stream: iterate it, use it in ``with``, ``close()`` it."""

    def __init__(self, chunks: list[T]) -> None:
        self._chunks = chunks
        self._position = 0

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        if self._position >= len(self._chunks):
            raise StopIteration
        chunk = self._chunks[self._position]
        self._position += 1
        return chunk

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream: later iteration ends at once, as a closed SDK stream does."""
        self._position = len(self._chunks)

    def __repr__(self) -> str:
        return f"ReplayedStream({len(self._chunks)} chunks, {self._position} read)"


class AsyncReplayedStream(AsyncIterator[T], Generic[T]):
    """A recorded asynchronous stream: ``async for``, ``async with``, ``await close()``."""

    def __init__(self, chunks: list[T]) -> None:
        self._chunks = chunks
        self._position = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._position >= len(self._chunks):
            raise StopAsyncIteration
        chunk = self._chunks[self._position]
        self._position += 1
        return chunk

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the stream, as ``await stream.close()`` does for an SDK's async stream."""
        self._position = len(self._chunks)

    async def aclose(self) -> None:
        """The async-generator spelling of :meth:`close`."""
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncReplayedStream({len(self._chunks)} chunks, {self._position} read)"
