"""The recorder: ``get_or_record`` replays a stored value or calls the real API and stores it.

A recorder is bound to one store and one namespace. Its mode decides what a lookup may
do (see ``_modes``); its codec turns users' objects into storable values; its schema
version and max age decide when a recording is stale. Whatever the value was recorded,
the caller gets it back *as the store will replay it*, so a test that passes while
recording passes on every replay.
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import inspect
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import blake3

from castore._atomic import ensure_private_directory
from castore._index import Entry, now
from castore._keys import check_namespace, stored_key
from castore._modes import Mode, check_on_expired, parse_max_age
from castore._redact import Redact
from castore._store import Store
from castore._usertypes import ShapeError, make_codec
from castore.errors import (
    ExpiredRecordingError,
    ExpiredRecordingWarning,
    MissingRecordingError,
    StaleRecordingError,
)

KEY_LOCK_BUCKETS = 256  # lock files per store: bounded, and collisions are rare and harmless


class RecordingListener(Protocol):
    """What a recorder tells the session it belongs to (the pytest plugin implements it)."""

    fresh_since: dt.datetime
    """In mode ``all``, entries recorded after this moment count as already re-recorded."""

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def missed(self, recorder: Recorder, key: str, reason: str) -> None: ...

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str: ...


class _StandaloneListener:
    """Used outside pytest: no accounting, and advice phrased for a recorder in a script."""

    def __init__(self) -> None:
        self.fresh_since = now()

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def missed(self, recorder: Recorder, key: str, reason: str) -> None:
        pass

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        root = str(recorder.store.root)
        return f"Recorder({root!r}, {recorder.namespace!r}, mode={mode.value!r})"


@dataclass(slots=True)
class _Flight:
    """One recording in progress; concurrent callers for the same key wait for it."""

    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Recorder:
    """Record once, replay everywhere: the object tests call ``get_or_record`` on.

    >>> recorder = Recorder("tests/fixtures/castore", "tests/test_translate")
    >>> ir = await recorder.get_or_record("find_index", lambda: translate(prompt))
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        namespace: str,
        *,
        mode: Mode | str = Mode.NONE,
        type: Any = None,
        serializer: Callable[[Any], Any] | None = None,
        deserializer: Callable[[Any], Any] | None = None,
        schema_version: str | int | None = None,
        max_age: dt.timedelta | float | str | None = None,
        on_expired: str = "warn",
        redact: Redact | None = None,
        listener: RecordingListener | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.namespace = check_namespace(namespace)
        self.mode = Mode.parse(mode)
        self.schema_version = schema_version
        self.max_age = parse_max_age(max_age)
        self.on_expired = check_on_expired(on_expired)
        self._codec = make_codec(type, serializer, deserializer)
        self._redact = redact
        self._listener: RecordingListener = listener or _StandaloneListener()
        self._hits = 0
        self._misses = 0
        self._recorded = 0
        self._saved_seconds = 0.0
        self._async_flights: dict[str, _Flight] = {}
        self._sync_flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Recorder({self.store!r}, {self.namespace!r}, mode={self.mode.value!r})"

    # --- the API tests call ------------------------------------------------------------

    async def get_or_record(
        self,
        key: str,
        generator_fn: Callable[[], Any],
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """Replay ``key``, or call ``generator_fn`` (sync or async, value or stream) and record.

        ``generator_fn`` is never called when a usable recording exists. If it raises,
        the exception propagates and nothing is stored.
        """
        __tracebackhide__ = True
        stored = stored_key(key)
        while True:
            entry = self._usable_entry(stored)
            if entry is not None:
                return self._replay(stored, entry)
            if self.mode is Mode.OFF:
                self._misses += 1
                result = generator_fn()
                return await result if inspect.isawaitable(result) else result
            flight = self._async_flights.get(stored)
            if flight is not None:  # another task is recording this key: wait for it
                while not flight.done.is_set():
                    await _sleep(0.005)
                if flight.error is not None:
                    raise flight.error
                continue
            flight = self._async_flights[stored] = _Flight()
            try:
                async with self._async_key_lock(stored):
                    fresh = self._usable_after_refresh(stored)
                    if fresh is not None:
                        return self._replay(stored, fresh)
                    self._misses += 1
                    started = time.perf_counter()
                    value, stream = await _collect_async(generator_fn())
                    duration = time.perf_counter() - started
                    return self._record(stored, value, stream, duration, metadata)
            except BaseException as error:
                flight.error = error
                raise
            finally:
                flight.done.set()
                del self._async_flights[stored]

    def get_or_record_sync(
        self,
        key: str,
        generator_fn: Callable[[], Any],
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """The synchronous twin of :meth:`get_or_record`, for sync tests and code."""
        __tracebackhide__ = True
        stored = stored_key(key)
        while True:
            entry = self._usable_entry(stored)
            if entry is not None:
                return self._replay(stored, entry)
            if self.mode is Mode.OFF:
                self._misses += 1
                return _refuse_async(generator_fn(), key)
            with self._flights_lock:
                flight = self._sync_flights.get(stored)
                leader = flight is None
                if flight is None:
                    flight = self._sync_flights[stored] = _Flight()
            if not leader:  # another thread is recording this key: wait for it
                flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                continue
            try:
                with self._key_lock(stored):
                    fresh = self._usable_after_refresh(stored)
                    if fresh is not None:
                        return self._replay(stored, fresh)
                    self._misses += 1
                    started = time.perf_counter()
                    value, stream = _collect_sync(_refuse_async(generator_fn(), key))
                    duration = time.perf_counter() - started
                    return self._record(stored, value, stream, duration, metadata)
            except BaseException as error:
                flight.error = error
                raise
            finally:
                flight.done.set()
                with self._flights_lock:
                    del self._sync_flights[stored]

    def get_stats(self) -> dict[str, Any]:
        """Counts as in the seeds' recorder, plus what was recorded and the time saved."""
        total = self._hits + self._misses
        return {
            "cache_hits": self._hits,
            "cache_misses": self._misses,
            "recorded": self._recorded,
            "total_requests": total,
            "hit_rate": self._hits / total if total else 0.0,
            "time_saved": self._saved_seconds,
            "num_cached_responses": len(self.store.entries(self.namespace)),
            "mode": self.mode.value,
        }

    def clear_cache(self) -> None:
        """Forget what this process has read of the namespace, so the next lookup re-reads
        the store from disk (and sees what other processes recorded). Unlike the seeds'
        recorder, this never deletes recordings: that is ``castore prune`` or ``delete``."""
        self.store.refresh(self.namespace)

    def delete(self, key: str) -> bool:
        """Remove ``key``'s recording from the namespace; True if there was one."""
        return self.store.delete(self.namespace, key)

    # --- deciding --------------------------------------------------------------------

    def _usable_entry(self, stored: str) -> Entry | None:
        """The entry to replay, or None when the generator must run; raises where the
        mode forbids running it."""
        __tracebackhide__ = True
        if self.mode is Mode.OFF:
            return None
        entry = self.store._stored_entry(self.namespace, stored)
        problem = self._problem_with(stored, entry)
        if problem is None:
            return entry
        if self.mode.records:
            return None
        self._misses += 1
        self._listener.missed(self, stored, problem)
        hint = self._listener.how_to_record(self, stored, _mode_to_fix(problem))
        if entry is None:
            raise MissingRecordingError(self.namespace, stored, self.store.root, hint)
        raise StaleRecordingError(self.namespace, stored, problem, hint)

    def _usable_after_refresh(self, stored: str) -> Entry | None:
        """Under the key lock: did another process record the key meanwhile?"""
        self.store.refresh(self.namespace)
        entry = self.store.entry(self.namespace, stored)
        return entry if self._problem_with(stored, entry) is None else None

    def _problem_with(self, stored: str, entry: Entry | None) -> str | None:
        """Why ``entry`` cannot be replayed as it is, or None if it can."""
        __tracebackhide__ = True
        if entry is None:
            return "missing"
        if self.mode is Mode.ALL and entry.recorded_at < self._listener.fresh_since:
            return "re-recording everything"
        if self.schema_version is not None and entry.schema != self.schema_version:
            return (
                f"it was recorded with schema version {entry.schema!r}, and the recorder "
                f"now declares {self.schema_version!r}"
            )
        if self.max_age is not None:
            age = now() - entry.recorded_at
            if age > self.max_age:
                return self._expired(stored, age)
        return None

    def _expired(self, stored: str, age: dt.timedelta) -> str | None:
        """Apply ``on_expired``: a reason to re-record, an error, or a warning and replay."""
        __tracebackhide__ = True
        reason = f"it was recorded {_age(age)} ago, more than max_age {_age(self.max_age)}"
        if self.on_expired == "rerecord" and self.mode.records:
            return reason
        hint = self._listener.how_to_record(self, stored, Mode.ALL)
        if self.on_expired == "fail":
            raise ExpiredRecordingError(self.namespace, stored, reason, hint)
        warnings.warn(
            ExpiredRecordingWarning(
                f"recording {stored!r} in namespace {self.namespace!r}: {reason}; "
                f"re-record it with: {hint}"
            ),
            stacklevel=5,
        )
        return None

    # --- replaying and recording -------------------------------------------------------

    def _replay(self, stored: str, entry: Entry) -> Any:
        __tracebackhide__ = True
        value = self._decode(stored, entry)
        self._hits += 1
        self._saved_seconds += entry.duration or 0.0
        self._listener.replayed(self, stored, entry)
        return value

    def _decode(self, stored: str, entry: Entry) -> Any:
        __tracebackhide__ = True
        plain = self.store._read_value(entry, (self.namespace, stored))
        try:
            if entry.stream is None:
                return self._codec.decode(plain)
            chunks = [self._codec.decode(chunk) for chunk in plain]
        except ShapeError as error:
            reason = f"the stored value no longer fits {self._codec.description}: {error}"
            hint = self._listener.how_to_record(self, stored, Mode.ALL)
            raise StaleRecordingError(self.namespace, stored, reason, hint) from None
        return _replay_async(chunks) if entry.stream == "async" else _replay_sync(chunks)

    def _record(
        self,
        stored: str,
        value: Any,
        stream: str | None,
        duration: float,
        metadata: Mapping[str, Any] | None,
    ) -> Any:
        plain = (
            [self._codec.encode(chunk) for chunk in value] if stream else self._codec.encode(value)
        )
        if self._redact is not None:
            plain = self._redact(plain)
            metadata = self._redact(dict(metadata)) if metadata else metadata
        entry = self.store.put(
            self.namespace,
            stored,
            plain,
            metadata=metadata,
            duration=duration,
            schema=self.schema_version,
            stream=stream,
        )
        self._recorded += 1
        self._listener.recorded(self, stored, entry)
        # Hand back what every replay will give, not the live object: same types, same
        # redactions, and a codec that cannot read its own output fails now, not in CI.
        return self._decode(stored, entry)

    # --- cross-process exclusion per key -----------------------------------------------

    def _key_lock_path(self, stored: str) -> str:
        bucket = blake3.blake3(f"{self.namespace}\0{stored}".encode()).digest()[0]
        locks = self.store.state_dir / "locks"
        ensure_private_directory(self.store.state_dir)
        locks.mkdir(exist_ok=True)
        return str(locks / f"record-{bucket % KEY_LOCK_BUCKETS:02x}.lock")

    @contextmanager
    def _key_lock(self, stored: str) -> Iterator[None]:
        """Held while recording a key, so two processes (xdist workers) call its
        generator once: the second waits, then replays what the first recorded."""
        import filelock  # noqa: PLC0415 - recording only; replay-only runs skip the import

        with filelock.FileLock(self._key_lock_path(stored), is_singleton=True):
            yield

    @asynccontextmanager
    async def _async_key_lock(self, stored: str) -> AsyncIterator[None]:
        import filelock  # noqa: PLC0415 - recording only; replay-only runs skip the import

        lock = filelock.FileLock(self._key_lock_path(stored), is_singleton=True)
        while True:  # poll without blocking the event loop
            try:
                lock.acquire(timeout=0)
                break
            except filelock.Timeout:
                await _sleep(0.05)
        try:
            yield
        finally:
            lock.release()


async def _sleep(seconds: float) -> None:
    import asyncio  # noqa: PLC0415 - only async recordings wait; sync suites skip the import

    await asyncio.sleep(seconds)


def _age(age: dt.timedelta | None) -> str:
    if age is None:
        return "?"
    if age >= dt.timedelta(days=2):
        return f"{age.days} days"
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{age.total_seconds():.0f} s"


def _mode_to_fix(problem: str) -> Mode:
    return Mode.NEW_EPISODES if problem == "missing" else Mode.ALL


def _refuse_async(result: Any, key: str) -> Any:
    """The sync twin cannot run coroutines or async streams: say which method to use."""
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


def _collect_sync(result: Any) -> tuple[Any, str | None]:
    if _is_sync_stream(result):
        return list(result), "sync"
    return result, None


async def _collect_async(result: Any) -> tuple[Any, str | None]:
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aiter__"):
        return [chunk async for chunk in result], "async"
    return _collect_sync(result)


def _replay_sync(chunks: list[Any]) -> Iterator[Any]:
    yield from chunks


async def _replay_async(chunks: list[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk
