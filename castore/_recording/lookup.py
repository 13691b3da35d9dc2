"""The steps a lookup asks for, and the two drivers that perform them.

``Recorder._lookup`` decides, once for every caller, what a lookup does: replay, call
through, wait for another caller's recording, or take the key's lock and record. Where it
needs something done that differs between sync and async code, it yields a step (call the
generator function, wait for a flight, acquire a lock) and a driver performs it:
:func:`run_sync` blocking, :func:`run_async` without blocking the event loop. A third
caller (HTTP-level recording) brings its own way of calling, not a third copy of the rules.
"""

from __future__ import annotations

import collections.abc
import inspect
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, Final, NamedTuple

from castore._recording.flights import Flight
from castore._recording.live import live_call
from castore._storage.index import StreamKind
from castore._storage.locks import KeyLock

FLIGHT_POLL_SECONDS: Final = 0.005
LOCK_POLL_SECONDS: Final = 0.05


class CallThrough:
    """Call the generator function and hand its result back untouched (mode ``off``)."""

    __slots__ = ()


class Call:
    """Call the generator function, collect a stream whole, and reply with :class:`Collected`."""

    __slots__ = ()


class Wait(NamedTuple):
    """Wait until another caller's recording of the key has landed."""

    flight: Flight


class Acquire(NamedTuple):
    """Hold the key's cross-process lock (the lookup releases it itself)."""

    lock: KeyLock


Step = CallThrough | Call | Wait | Acquire
Steps = Generator[Step, Any, Any]


class Collected(NamedTuple):
    """What a call returned: the value (a stream's chunks as a list) and how long it took."""

    value: Any
    stream: StreamKind | None
    duration: float


def run_sync(steps: Steps, generator_fn: Callable[[], Any], key: str) -> Any:
    """Drive a lookup in sync code: calls, waits and locks block."""
    __tracebackhide__ = True

    def perform(step: Step) -> Any:
        __tracebackhide__ = True
        if isinstance(step, CallThrough):
            with live_call():
                return _refuse_async(generator_fn(), key)
        if isinstance(step, Call):
            started = time.perf_counter()
            with live_call():
                value, stream = _collect_sync(_refuse_async(generator_fn(), key))
            return Collected(value, stream, time.perf_counter() - started)
        if isinstance(step, Wait):
            step.flight.done.wait()
        else:
            step.lock.acquire()
        return None

    step, result = _advance(steps, None, None)
    while step is not None:
        try:
            reply, error = perform(step), None
        except BaseException as failure:  # handed to the lookup, which cleans up and re-raises
            reply, error = None, failure
        step, result = _advance(steps, reply, error)
    return result


async def run_async(steps: Steps, generator_fn: Callable[[], Any]) -> Any:
    """Drive a lookup in async code: waits and locks poll, so the event loop keeps running."""
    __tracebackhide__ = True

    async def perform(step: Step) -> Any:
        __tracebackhide__ = True
        if isinstance(step, CallThrough):
            with live_call():
                result = generator_fn()
                return await result if inspect.isawaitable(result) else result
        if isinstance(step, Call):
            started = time.perf_counter()
            with live_call():
                value, stream = await _collect_async(generator_fn())
            return Collected(value, stream, time.perf_counter() - started)
        if isinstance(step, Wait):
            while not step.flight.done.is_set():
                await _sleep(FLIGHT_POLL_SECONDS)
        else:
            while not step.lock.try_acquire():
                await _sleep(LOCK_POLL_SECONDS)
        return None

    step, result = _advance(steps, None, None)
    while step is not None:
        try:
            reply, error = await perform(step), None
        except BaseException as failure:  # handed to the lookup, which cleans up and re-raises
            reply, error = None, failure
        step, result = _advance(steps, reply, error)
    return result


def _advance(steps: Steps, reply: Any, error: BaseException | None) -> tuple[Step | None, Any]:
    """Resume the lookup with a step's reply (or its error): (next step, None) or, once the
    lookup has returned, (None, its result)."""
    __tracebackhide__ = True
    try:
        return (steps.send(reply) if error is None else steps.throw(error)), None
    except StopIteration as finished:
        return None, finished.value


async def _sleep(seconds: float) -> None:
    import asyncio  # noqa: PLC0415 - only async recordings wait; sync suites skip the import

    await asyncio.sleep(seconds)


def _refuse_async(result: Any, key: str) -> Any:
    """The sync driver cannot run coroutines or async streams: say which method to use."""
    if inspect.isawaitable(result) or hasattr(result, "__aiter__"):
        if inspect.iscoroutine(result):
            result.close()  # no "never awaited" warning on top of our error
        raise TypeError(
            f"generator_fn for key {key!r} returned {type(result).__name__}, which is "
            f"asynchronous: use `await recorder.get_or_record(...)` instead of get_or_record_sync"
        )
    return result


def _is_sync_stream(result: Any) -> bool:
    return isinstance(result, collections.abc.Iterator) and not isinstance(
        result, str | bytes | bytearray | Mapping
    )


def _is_stream_manager(result: Any) -> bool:
    """A context manager that opens a stream (anthropic's ``messages.stream(...)``):
    not itself iterable, unlike openai's ``Stream``, which is both."""
    return (
        hasattr(result, "__enter__")
        and hasattr(result, "__exit__")
        and not isinstance(result, collections.abc.Iterable)
    )


def _collect_sync(result: Any) -> tuple[Any, StreamKind | None]:
    if _is_stream_manager(result):
        # Open it as `with` would, record what it streams, close it. The replay is a
        # stream that is its own context manager, so `with ... as stream:` works on both.
        with result as opened:
            if isinstance(opened, collections.abc.Iterable) and not isinstance(
                opened, str | bytes | bytearray | Mapping
            ):
                return list(opened), StreamKind.SYNC
            return opened, None
    if _is_sync_stream(result):
        return list(result), StreamKind.SYNC
    return result, None


async def _collect_async(result: Any) -> tuple[Any, StreamKind | None]:
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aenter__") and not hasattr(result, "__aiter__"):
        async with result as opened:  # an async stream manager, as above
            if hasattr(opened, "__aiter__"):
                return [chunk async for chunk in opened], StreamKind.ASYNC
            return opened, None
    if hasattr(result, "__aiter__"):
        return [chunk async for chunk in result], StreamKind.ASYNC
    return _collect_sync(result)
