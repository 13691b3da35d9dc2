"""The recorder: ``get_or_record`` replays a stored value or calls the real API and stores it.

A recorder is bound to one namespace of a store. Its mode decides what a lookup may do
(see ``modes``); its codec turns users' objects into storable values; its schema version
and max age decide when a recording is stale (``staleness``). Whatever the value was
recorded, the caller gets it back *as the store will replay it*, so a test that passes
while recording passes on every replay.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Protocol

from castore._recording.ambient import lent
from castore._recording.modes import Mode, check_on_expired, parse_max_age
from castore._recording.redact import Redact
from castore._recording.tally import Tally
from castore._recording.usertypes import ShapeError, ValueCodec, make_codec
from castore._recording.volatile import DEFAULT as DEFAULT_VOLATILITY
from castore._recording.volatile import Volatility
from castore._storage.codec import DecodeError, EncodeError, pack_value, unpack_value
from castore._storage.index import Entry, StreamKind, check_metadata, now
from castore._storage.names import stored_key
from castore._storage.public_names import present_as_public
from castore._storage.store import Store
from castore.errors import (
    CastoreError,
    ExpiredRecordingError,
    ExpiredRecordingWarning,
    MissingRecordingError,
    StaleRecordingError,
    UnencodableValueError,
    UnreadableRecordingError,
)

if TYPE_CHECKING:
    # The recording path's modules: a replay that finds its recordings never imports them
    # (each is imported where the path starts), which keeps a replaying session's import
    # of castore, most of the fixed cost of running one test module, short.
    from castore._recording.flights import Flights
    from castore._recording.lookup import Collected, Steps
    from castore._recording.recorder_stats import RecorderStats
    from castore._recording.staleness import Problem


def _stacklevel_outside_castore() -> int:
    """The ``stacklevel`` that makes a warning name the user's line: the number of frames,
    from the warning function up, that are castore's recording code (the replay fast path
    and the full lookup's driver are different depths)."""
    frame: FrameType | None = sys._getframe(1)  # the warning function: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename in _OWN_FILES:
        frame = frame.f_back
        level += 1
    return level


class RecordingListener(Protocol):
    """What a recorder tells the session it belongs to (the pytest plugin implements it)."""

    fresh_since: dt.datetime
    """In mode ``all``, entries recorded after this moment count as already re-recorded.
    A listener may also hold ``confirmed`` (namespace -> keys): keys re-recorded in this
    session and found unchanged, which count as re-recorded though their entry is old."""

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None: ...

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None: ...

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str: ...


class StandaloneListener:
    """Used outside pytest: no accounting, and advice phrased for a recorder in a script."""

    def __init__(self) -> None:
        self.fresh_since = now()
        self.confirmed: dict[str, set[str]] = {}

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        pass

    def missed(self, recorder: Recorder, key: str, problem: Problem) -> None:
        pass

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        root = str(recorder.store.root)
        return f"Recorder({root!r}, {recorder.namespace!r}, mode={mode.value!r})"


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
        mode: Mode | str | None = None,
        type: Any = None,
        serializer: Callable[[Any], Any] | None = None,
        deserializer: Callable[[Any], Any] | None = None,
        schema_version: str | int | None = None,
        max_age: dt.timedelta | float | str | None = None,
        on_expired: str = "warn",
        redact: Redact | None = None,
        listener: RecordingListener | None = None,
        auto_type: bool = True,
        volatile: Volatility | Iterable[str] | bool | None = None,
    ) -> None:
        ambient = lent() if listener is None else None
        if not isinstance(store, Store) and ambient and not Path(store).is_absolute():
            store = ambient.rootdir / store
        self.store = store if isinstance(store, Store) else Store(store)
        if (
            ambient is not None
            and self.store.root != ambient.store_root  # the plugin's recorders: no resolve()
            and self.store.root.resolve() != ambient.store_root.resolve()
        ):
            ambient = None  # another store: a recorder of its own, as outside pytest
        self._namespace = self.store.namespace(namespace)
        self.namespace = self._namespace.name
        # The pytest plugin makes a recorder per test, with the defaults below: each check
        # is skipped for its default, and the flights are made by the first recording.
        if mode.__class__ is Mode:
            self.mode: Mode = mode
        elif mode is not None:
            self.mode = Mode.parse(mode)
        else:
            self.mode = ambient.mode() if ambient is not None else Mode.NONE
        if ambient is not None:
            listener = ambient.listener
        self.schema_version = schema_version
        self.max_age = None if max_age is None else parse_max_age(max_age)
        self.on_expired = on_expired if on_expired == "warn" else check_on_expired(on_expired)
        self._auto_type = auto_type
        self._codec = make_codec(type, serializer, deserializer, auto_type)
        self._codecs: dict[Any, ValueCodec] = {}  # per-call type= -> its codec
        self._redact = redact
        self._volatility = DEFAULT_VOLATILITY if volatile is None else _volatility(volatile)
        self._listener: RecordingListener = listener or StandaloneListener()
        self._tally = Tally()
        self._flight_pair: tuple[Flights, Flights] | None = None

    def _flights(self, sync: bool) -> Flights:
        """The driver's flights. Separate per driver: a sync caller must never wait on an
        async recording running in its own thread's event loop. Made by the first lookup
        that needs them (a replay needs none), under a lock: threads racing to the first
        recording of a recorder must share one pair."""
        pair = self._flight_pair
        if pair is None:
            from castore._recording.flights import Flights  # noqa: PLC0415 - recording path

            with _FLIGHTS_LOCK:
                if self._flight_pair is None:
                    self._flight_pair = (Flights(), Flights())
                pair = self._flight_pair
        return pair[0] if sync else pair[1]

    def __repr__(self) -> str:
        return f"Recorder({self.store!r}, {self.namespace!r}, mode={self.mode.value!r})"

    # --- the API tests call ------------------------------------------------------------

    async def get_or_record(
        self,
        key: str,
        generator_fn: Callable[[], Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        type: Any = None,
        request: Any = None,
    ) -> Any:
        """Replay ``key``, or call ``generator_fn`` (sync or async, value or stream) and record.

        ``generator_fn`` is never called when a usable recording exists. If it raises,
        the exception propagates and nothing is stored. ``type`` types this call's value
        (a dataclass, a pydantic model such as openai's ``ChatCompletion``), in place of
        the recorder's own ``type``/``serializer`` for this call only. ``request`` (the
        call's arguments) is fingerprinted and kept with the recording: under a fixed key,
        a later call whose request differs is a stale recording that names the parts that
        changed, re-recorded by ``new_episodes``, instead of the old answer replayed.
        """
        __tracebackhide__ = True
        stored = self._stored_key_for(key)
        codec = self._codec if type is None else self._codec_for(type)
        if request is not None:
            metadata = _with_fingerprint(metadata, request)
        value = self._replay_if_usable(stored, metadata, codec, request is not None)
        if value is _UNFIT:
            from castore._recording.lookup import run_async  # noqa: PLC0415 - recording path

            steps = self._lookup(stored, metadata, self._flights(sync=False), codec)
            value = await run_async(steps, generator_fn)
        return value

    def get_or_record_sync(
        self,
        key: str,
        generator_fn: Callable[[], Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        type: Any = None,
        request: Any = None,
    ) -> Any:
        """The synchronous twin of :meth:`get_or_record`, for sync tests and code."""
        __tracebackhide__ = True
        stored = self._stored_key_for(key)
        # Inline for the commonest call (no type=, no request=): a replay's every call shows.
        codec = self._codec if type is None else self._codec_for(type)
        if request is not None:
            metadata = _with_fingerprint(metadata, request)
        value = self._replay_if_usable(stored, metadata, codec, request is not None)
        if value is _UNFIT:
            from castore._recording.lookup import run_sync  # noqa: PLC0415 - recording path

            steps = self._lookup(stored, metadata, self._flights(sync=True), codec)
            value = run_sync(steps, generator_fn, key)
        return value

    def get_stats(self) -> RecorderStats:
        """Counts as in the seeds' recorder (``stats["cache_hits"]`` reads as it did), plus
        what was recorded and the time saved; also attributes (``stats.cache_hits``)."""
        from castore._recording.recorder_stats import stats_of  # noqa: PLC0415 - rarely asked

        cached = len(self.store.entries(self.namespace))
        return stats_of(self._tally, cached=cached, mode=self.mode.value)

    def refresh(self) -> None:
        """Forget what this process has read of the namespace, so the next lookup re-reads
        the store from disk (and sees what other processes recorded). It never deletes
        recordings: that is ``castore prune`` or :meth:`delete`."""
        self.store.refresh(self.namespace)

    def clear_cache(self) -> None:
        """:meth:`refresh` under the seeds' name (which never deleted anything either)."""
        self.refresh()

    def delete(self, key: str) -> bool:
        """Remove ``key``'s recording from the namespace; True if there was one."""
        return self.store.delete(self.namespace, key)

    # --- deciding --------------------------------------------------------------------

    def _replay_if_usable(
        self,
        stored: str,
        metadata: Mapping[str, Any] | None,
        codec: ValueCodec,
        fingerprinted: bool,
    ) -> Any:
        """The replay, when the recording is usable as it is: no flight, no driver, no
        lock, and for the commonest call (no ``request=``, no ``max_age``, no schema, a
        replaying mode) none of the staleness checks, which cannot apply to it (a replay
        costs a few microseconds, so each call around it shows), nor a look at the
        metadata, which may be costly to make (``castore_http`` derives it when it is
        read). Else :data:`_UNFIT`, and the full lookup decides: record, wait for
        another recorder, or fail."""
        __tracebackhide__ = True
        mode = self.mode
        if mode is Mode.OFF:
            return _UNFIT
        entry = self._namespace.entry(stored)
        if entry is None:
            return _UNFIT
        if (
            fingerprinted or mode is Mode.ALL or self.max_age is not None or self.schema_version
        ) and self._problem_with(stored, entry, metadata if fingerprinted else None):
            return _UNFIT
        return self._replay(stored, entry, codec)  # _UNFIT for a misfit the mode re-records

    def _codec_for(self, value_type: Any) -> ValueCodec:
        """The recorder's codec, or one for a per-call ``type=`` (made once per type)."""
        if value_type is None:
            return self._codec
        found = self._codecs.get(value_type)
        if found is None:
            found = self._codecs[value_type] = make_codec(value_type, None, None)
        return found

    def _stored_key_for(self, key: str) -> str:
        """The stored form of ``key``, or of its older spelling when only that one is
        recorded: a key from ``request_key`` for a request with an integral float
        (``temperature=0.0``) was spelled differently before castore compared numbers by
        value, and recordings made then must keep replaying."""
        stored = stored_key(key)
        if key.__class__ is str:  # only request_key's str subclass carries a legacy spelling
            return stored
        legacy = getattr(key, "legacy", None)
        if legacy and self._namespace.entry(stored) is None:
            older = stored_key(legacy)
            if self._namespace.entry(older) is not None:
                return older
        return stored

    def _lookup(
        self, stored: str, metadata: Mapping[str, Any] | None, flights: Flights, codec: ValueCodec
    ) -> Steps:
        """The one lookup of every driver (see ``lookup``): replay, call through, wait for
        another caller's recording of the key, or hold the key's lock and record it."""
        __tracebackhide__ = True
        from castore._recording.lookup import Acquire, Call, CallThrough, Wait  # noqa: PLC0415

        while True:
            entry = self._usable_entry(stored, metadata)
            if entry is not None:
                value = self._replay(stored, entry, codec)
                if value is not _UNFIT:
                    return value
            if self.mode is Mode.OFF:
                self._tally.missed()
                return (yield CallThrough())
            flight, leading = flights.board(stored)
            if not leading:  # another caller is recording this key: wait, then replay it
                yield Wait(flight)
                if flight.error is not None:
                    raise flight.error
                continue
            error: BaseException | None = None
            try:
                lock = self._namespace.key_lock(stored)
                yield Acquire(lock)
                try:
                    fresh = self._usable_after_refresh(stored, metadata)
                    if fresh is not None and fresh != entry:  # another process recorded it
                        value = self._replay(stored, fresh, codec)
                        if value is not _UNFIT:
                            return value
                    self._tally.missed()
                    collected: Collected = yield Call()
                    return self._record(stored, collected, metadata, codec)
                finally:
                    lock.release()
            except BaseException as failure:
                error = failure
                raise
            finally:
                flights.land(stored, flight, error)

    def _usable_entry(self, stored: str, metadata: Mapping[str, Any] | None) -> Entry | None:
        """The entry to replay, or None when the generator must run; raises where the
        mode forbids running it."""
        __tracebackhide__ = True
        if self.mode is Mode.OFF:
            return None
        entry = self._namespace.entry(stored)
        problem = self._problem_with(stored, entry, metadata)
        if problem is None:
            return entry
        if self.mode.records:
            return None
        hint = self._listener.how_to_record(self, stored, problem.fixed_by)
        error: CastoreError
        if entry is None:
            from castore._recording.nearest import nearest_recordings  # noqa: PLC0415 - a miss

            nearest = nearest_recordings(self._namespace.entries(), stored, metadata)
            error = MissingRecordingError(
                self.namespace, stored, self.store.root, hint, nearest=nearest
            )
        else:
            error = StaleRecordingError(self.namespace, stored, problem.reason, hint)
        raise self._missed(stored, problem, error)

    def _missed(self, stored: str, problem: Problem, error: CastoreError) -> CastoreError:
        """Count a lookup that fails, and tell the listener, with the message the caller
        gets (code under test may catch the error; the session still reports it)."""
        self._tally.missed()
        self._listener.missed(self, stored, replace(problem, message=str(error)))
        return error

    def _usable_after_refresh(
        self, stored: str, metadata: Mapping[str, Any] | None
    ) -> Entry | None:
        """Under the key lock: did another process record the key meanwhile?"""
        entry = self._namespace.fresh_entry(stored)
        usable = self._problem_with(stored, entry, metadata) is None
        return entry if usable else None

    def _problem_with(
        self, stored: str, entry: Entry | None, metadata: Mapping[str, Any] | None = None
    ) -> Problem | None:
        """Why ``entry`` cannot be replayed as it is, or None if it can; ``metadata`` is
        the call's (its request's fingerprint and summary, when it gave ``request=``)."""
        __tracebackhide__ = True
        from castore._recording.staleness import Miss, problem_with  # noqa: PLC0415

        if (
            entry is not None
            and self.mode is Mode.ALL
            and stored in getattr(self._listener, "confirmed", {}).get(self.namespace, ())
        ):
            return None  # re-recorded in this session, and found unchanged
        problem = problem_with(
            entry,
            mode=self.mode,
            fresh_since=self._listener.fresh_since,
            schema_version=self.schema_version,
            max_age=self.max_age,
            now=now() if self.max_age is not None else _NEVER,  # only max_age reads it
            fingerprint=_fingerprint_of(metadata),
            metadata=metadata,
        )
        if problem is not None and problem.miss is Miss.EXPIRED:
            return self._expired(stored, problem)
        return problem

    def _expired(self, stored: str, problem: Problem) -> Problem | None:
        """Apply ``on_expired``: a reason to re-record, an error, or a warning and replay."""
        __tracebackhide__ = True
        if self.on_expired == "rerecord" and self.mode.records:
            return problem
        hint = self._listener.how_to_record(self, stored, Mode.ALL)
        if self.on_expired == "fail":
            expired = ExpiredRecordingError(self.namespace, stored, problem.reason, hint)
            raise self._missed(stored, problem, expired)
        warnings.warn(
            ExpiredRecordingWarning(
                f"recording {stored!r} in namespace {self.namespace!r}: {problem.reason}; "
                f"re-record it with: {hint}"
            ),
            stacklevel=_stacklevel_outside_castore(),
        )
        return None

    # --- replaying and recording -------------------------------------------------------

    def _replay(self, stored: str, entry: Entry, codec: ValueCodec) -> Any:
        """The recorded value; :data:`_UNFIT` when it no longer fits the recorder's type and
        the mode re-records (``new_episodes``, ``all``). In replay-only modes a value that
        no longer fits is reported to the session as stale, then raised."""
        __tracebackhide__ = True
        try:
            value = self._decode(stored, entry, codec)
        except _Unfit as unfit:
            if self.mode.records:
                return _UNFIT
            from castore._recording.staleness import Miss, Problem  # noqa: PLC0415 - a misfit

            problem = Problem(Miss.UNREADABLE, unfit.reason)
            hint = self._listener.how_to_record(self, stored, problem.fixed_by)
            error = StaleRecordingError(self.namespace, stored, unfit.reason, hint)
            raise self._missed(stored, problem, error) from None
        self._tally.replayed(entry)
        self._listener.replayed(self, stored, entry)
        return value

    def _decode(self, stored: str, entry: Entry, codec: ValueCodec) -> Any:
        __tracebackhide__ = True
        return self._decode_plain(self._namespace.read(entry, stored), entry.stream, codec)

    def _decode_plain(self, plain: Any, stream: StreamKind | None, codec: ValueCodec) -> Any:
        """The value a replay gives for ``plain``; :class:`_Unfit` if the recorder's type
        or deserializer cannot read it."""
        try:
            if stream is None:
                return codec.decode(plain)
            chunks = [codec.decode(chunk) for chunk in plain]
        except ShapeError as error:
            raise _Unfit(f"the stored value no longer fits {codec.description}: {error}") from None
        from castore._recording.streams import (  # noqa: PLC0415 - streams are few
            AsyncReplayedStream,
            ReplayedStream,
        )

        if stream is StreamKind.ASYNC:
            return AsyncReplayedStream(chunks)
        return ReplayedStream(chunks)

    def _record(
        self,
        stored: str,
        collected: Collected,
        metadata: Mapping[str, Any] | None,
        codec: ValueCodec,
    ) -> Any:
        __tracebackhide__ = True
        value, stream = collected.value, collected.stream
        if _is_raw_response(value):
            kind = f"{type(value).__qualname__} (a raw HTTP response, from with_raw_response)"
            advice = (
                "record what .parse() gives instead: "
                "lambda: client.with_raw_response....create(...).parse()"
            )
            raise UnencodableValueError(stored, f"{kind}; {advice}", "")
        plain = [codec.encode(chunk) for chunk in value] if stream else codec.encode(value)
        if self._redact is not None:
            plain = self._redact(plain)
            metadata = self._redact(dict(metadata)) if metadata else metadata
        self._check_reads_back(stored, plain, stream, codec)
        duration: float | None = collected.duration
        earlier = self._unchanged(stored, plain, stream)
        if earlier is not None:
            entry, plain = earlier
            if entry.metadata == check_metadata(stored, metadata):
                return self._kept(stored, entry, codec)
            duration = entry.duration  # new metadata over the same blob: no new blob
        try:
            entry = self._namespace.put(
                stored,
                plain,
                metadata=metadata,
                duration=duration,
                schema=self.schema_version,
                stream=stream,
            )
        except CastoreError as error:
            # The message says what and where; the store's own frames would only bury it
            # (pytest hides this frame, so the test's line is what remains).
            raise error.with_traceback(None) from None
        self._tally.record(entry, unchanged=False)
        self._listener.recorded(self, stored, entry)
        # Hand back what every replay will give, not the live object: same types, same
        # redactions (checked readable above, so this cannot be unfit).
        return self._decode(stored, entry, codec)

    def _unchanged(
        self, stored: str, plain: Any, stream: StreamKind | None
    ) -> tuple[Entry, Any] | None:
        """The recording already held for ``stored`` and its value, when the new answer
        differs from it only in volatile parts (``volatile``): the same answer, kept as
        it was, so re-recording it writes no blob and changes nothing to review."""
        if self._volatility is None:
            return None
        entry = self._namespace.entry(stored)
        if entry is None or entry.stream != stream or entry.schema != self.schema_version:
            return None
        try:
            earlier = self._namespace.read(entry, stored)
        except CastoreError:
            return None  # a damaged recording: the new one replaces it
        if not self._volatility.same(earlier, plain):
            return None
        return entry, earlier

    def _kept(self, stored: str, entry: Entry, codec: ValueCodec) -> Any:
        """Re-recorded, unchanged: the store stays as it was. The session learns the key
        is fresh (mode ``all`` re-records it once per session) and counts it."""
        confirmed = getattr(self._listener, "confirmed", None)
        if isinstance(confirmed, dict):
            confirmed.setdefault(self.namespace, set()).add(stored)
        self._tally.record(entry, unchanged=True)
        self._listener.recorded(self, stored, entry)
        return self._decode(stored, entry, codec)

    def _check_reads_back(
        self, stored: str, plain: Any, stream: StreamKind | None, codec: ValueCodec
    ) -> None:
        """Refuse, before anything is written, a value that a replay could not read back:
        stored, it would fail every later run as 'stale' (a provider's answer that the
        recorder's type rejects, a stream recorded under a non-stream type)."""
        __tracebackhide__ = True
        try:
            stored_form = unpack_value(pack_value(plain))
        except (EncodeError, DecodeError):
            return  # put() refuses it with UnencodableValueError, naming the part
        try:
            self._decode_plain(stored_form, stream, codec)
        except _Unfit as unfit:
            raise UnreadableRecordingError(
                self.namespace, stored, codec.description, unfit.reason
            ) from None


def _volatility(volatile: Volatility | Iterable[str] | bool | None) -> Volatility | None:
    """``volatile=``: None or True, the default parts; False, none (every re-recording is
    written); patterns, the default parts and these; a :class:`Volatility`, as it is."""
    if volatile is None or volatile is True:
        return DEFAULT_VOLATILITY
    if volatile is False:
        return None
    if isinstance(volatile, Volatility):
        return volatile
    return Volatility(volatile)


def _is_raw_response(value: Any) -> bool:
    """openai's and anthropic's ``with_raw_response`` objects: headers plus a parse()."""
    return callable(getattr(value, "parse", None)) and hasattr(value, "headers")


def _with_fingerprint(metadata: Mapping[str, Any] | None, request: Any) -> Mapping[str, Any] | None:
    """The call's metadata, plus, when it gave ``request=``, its request's fingerprint and
    summary (its leaves: what a stale recording's message shows changed)."""
    if request is None:
        return metadata
    from castore._recording.request_keys import request_fingerprint, request_summary  # noqa: PLC0415
    from castore._recording.staleness import FINGERPRINT_FIELD  # noqa: PLC0415

    return {
        **request_summary(request),
        **(metadata or {}),
        FINGERPRINT_FIELD: request_fingerprint(request),
    }


def _fingerprint_of(metadata: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    from castore._recording.staleness import FINGERPRINT_FIELD  # noqa: PLC0415 - checks only

    found = metadata.get(FINGERPRINT_FIELD) if metadata else None
    return found if isinstance(found, dict) else None


class _Unfit(Exception):  # noqa: N818 - internal: becomes a stale or unreadable error
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: The recording code's files (the full lookup's driver is ``lookup``), named without
#: importing it: a replay never does.
_OWN_FILES: Final = frozenset({__file__, str(Path(__file__).with_name("lookup.py"))})


#: A stand-in for "now" where no max_age asks for the time (reading the clock costs a
#: replay about half a microsecond).
_NEVER: Final = dt.datetime.min.replace(tzinfo=dt.UTC)

#: What ``_replay`` returns when a recording no longer fits and the mode re-records it.
_UNFIT: Final = object()

#: Guards the first making of a recorder's flights (see Recorder._flights).
_FLIGHTS_LOCK: Final = threading.Lock()


present_as_public(Recorder, RecordingListener)
