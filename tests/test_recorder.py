"""The recorder: replay never calls the generator, recording stores what replay will give."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from castore import Mode, Recorder, Store, request_key
from castore._storage.store import internals
from castore.errors import (
    ExpiredRecordingError,
    ExpiredRecordingWarning,
    MissingRecordingError,
    StaleRecordingError,
    UnencodableValueError,
)

NAMESPACE = "tests/test_translate"


def must_not_be_called() -> object:
    raise AssertionError("replay called the generator")


async def must_not_be_awaited() -> object:
    raise AssertionError("replay called the generator")


def recorder(root: Path, mode: str = "new_episodes", **options: object) -> Recorder:
    return Recorder(root, NAMESPACE, mode=mode, **options)  # type: ignore[arg-type]


def test_replay_returns_the_stored_value_and_never_calls_the_generator(tmp_path: Path) -> None:
    calls = []
    first = recorder(tmp_path).get_or_record_sync(
        "k", lambda: calls.append(1) or {"answer": 42}, metadata={"prompt": "why"}
    )

    replayed = recorder(tmp_path, mode="none").get_or_record_sync("k", must_not_be_called)

    assert first == replayed == {"answer": 42}
    assert calls == [1]


async def test_async_replay_never_awaits_the_generator(tmp_path: Path) -> None:
    async def answer() -> dict[str, int]:
        return {"answer": 42}

    await recorder(tmp_path).get_or_record("k", answer)
    assert await recorder(tmp_path, mode="none").get_or_record("k", must_not_be_awaited) == {
        "answer": 42
    }


async def test_generator_may_be_a_lambda_returning_a_coroutine(tmp_path: Path) -> None:
    async def translate(prompt: str) -> str:
        return prompt.upper()

    assert await recorder(tmp_path).get_or_record("k", lambda: translate("hi")) == "HI"


def test_recording_stores_metadata_and_the_duration_of_the_call(tmp_path: Path) -> None:
    def slow() -> str:
        time.sleep(0.2)
        return "done"

    recorder(tmp_path).get_or_record_sync("slow", slow, metadata={"test": "slow"})

    entry = Store(tmp_path).entry(NAMESPACE, "slow")
    assert entry is not None
    assert entry.metadata == {"test": "slow"}
    assert entry.duration is not None and 0.2 <= entry.duration < 2


def test_an_exception_from_the_generator_propagates_and_nothing_is_stored(tmp_path: Path) -> None:
    def failing() -> object:
        raise ConnectionError("API down")

    with pytest.raises(ConnectionError, match="API down"):
        recorder(tmp_path).get_or_record_sync("k", failing)

    assert Store(tmp_path).entry(NAMESPACE, "k") is None


def test_the_value_returned_while_recording_is_what_replay_returns(tmp_path: Path) -> None:
    recorded = recorder(tmp_path).get_or_record_sync("k", lambda: {"pair": (1, 2), "n": 2**70})
    replayed = recorder(tmp_path, mode="none").get_or_record_sync("k", must_not_be_called)
    assert recorded == replayed
    assert type(recorded["pair"]) is tuple


def test_an_unencodable_result_names_the_key_and_stores_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnencodableValueError, match=r"'k'.*object"):
        recorder(tmp_path).get_or_record_sync("k", object)
    assert Store(tmp_path).entry(NAMESPACE, "k") is None


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_async_calls_for_one_key_run_the_generator_once(tmp_path: Path) -> None:
    calls = 0

    async def slow_call() -> dict[str, str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return {"answer": "shared"}

    shared = recorder(tmp_path)
    results = await asyncio.gather(*(shared.get_or_record("k", slow_call) for _ in range(5)))

    assert calls == 1
    assert results == [{"answer": "shared"}] * 5
    stats = shared.get_stats()
    assert (stats["cache_misses"], stats["cache_hits"], stats["recorded"]) == (1, 4, 1)


async def test_waiters_get_the_same_exception_when_the_recording_fails(tmp_path: Path) -> None:
    calls = 0

    async def failing() -> object:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        raise TimeoutError("slow API")

    shared = recorder(tmp_path)
    outcomes = await asyncio.gather(
        *(shared.get_or_record("k", failing) for _ in range(3)), return_exceptions=True
    )

    assert calls == 1
    assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)


def test_concurrent_threads_for_one_key_run_the_generator_once(tmp_path: Path) -> None:
    calls = []
    shared = recorder(tmp_path)

    def slow_call() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return "shared"

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(shared.get_or_record_sync("k", slow_call)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert results == ["shared"] * 5


def test_two_processes_recording_one_key_call_the_generator_once(
    tmp_path: Path, start_python
) -> None:
    calls_log = tmp_path / "calls.log"
    code = """
        import sys, time
        from castore import Recorder
        store, log = sys.argv[1], sys.argv[2]
        def expensive():
            with open(log, "a") as handle:
                handle.write("called\\n")
            time.sleep(1.0)
            return {"answer": 42}
        recorder = Recorder(store, "ns", mode="new_episodes")
        print(recorder.get_or_record_sync("shared-key", expensive))
    """
    processes = [start_python(code, str(tmp_path / "store"), str(calls_log)) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["{'answer': 42}"] * 2
    assert calls_log.read_text().splitlines() == ["called"]


def test_a_key_another_store_recorded_since_this_one_read_the_index_is_replayed(
    tmp_path: Path,
) -> None:
    """Under the key lock a recorder looks at the index as it is on disk now, even when it
    has read (and written) that index before: the other writer's key is replayed, not
    recorded again, and both keys stay."""
    mine, theirs = recorder(tmp_path), recorder(tmp_path)  # two Stores: two caches
    mine.get_or_record_sync("first", lambda: {"answer": 1})
    theirs.get_or_record_sync("second", lambda: {"answer": 2})

    assert mine.get_or_record_sync("second", must_not_be_called) == {"answer": 2}
    mine.get_or_record_sync("third", lambda: {"answer": 3})
    assert sorted(Store(tmp_path).entries(NAMESPACE)) == ["first", "second", "third"]


# --- streams ------------------------------------------------------------------------


def test_a_sync_stream_is_recorded_and_replayed_as_an_iterator_of_the_same_chunks(
    tmp_path: Path,
) -> None:
    def stream() -> Iterator[dict[str, str]]:
        yield {"delta": "Hel"}
        yield {"delta": "lo"}

    live = recorder(tmp_path).get_or_record_sync("s", stream)
    replayed = recorder(tmp_path, mode="none").get_or_record_sync("s", must_not_be_called)

    assert isinstance(replayed, Iterator)
    assert list(live) == list(replayed) == [{"delta": "Hel"}, {"delta": "lo"}]
    assert Store(tmp_path).entry(NAMESPACE, "s").stream == "sync"  # type: ignore[union-attr]


async def test_an_async_stream_is_replayed_as_an_async_iterator(tmp_path: Path) -> None:
    async def stream() -> AsyncIterator[str]:
        for chunk in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield chunk

    await recorder(tmp_path).get_or_record("s", stream)
    replayed = await recorder(tmp_path, mode="none").get_or_record("s", must_not_be_awaited)

    assert hasattr(replayed, "__aiter__")
    assert [chunk async for chunk in replayed] == ["a", "b", "c"]


async def test_an_async_function_returning_an_async_stream_is_a_stream(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[str]:
        yield "x"

    async def open_stream() -> AsyncIterator[str]:
        return chunks()

    live = await recorder(tmp_path).get_or_record("s", open_stream)
    assert [chunk async for chunk in live] == ["x"]


class SdkLikeStream:
    """The shape of openai's ``Stream``: an iterator, a context manager, closable."""

    def __init__(self, chunks: list[str]) -> None:
        self._chunks = iter(chunks)
        self.closed = False

    def __iter__(self) -> SdkLikeStream:
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def __enter__(self) -> SdkLikeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True


def test_a_stream_is_used_as_sdk_streams_are_on_recording_and_on_replay(tmp_path: Path) -> None:
    """Issue 14, bug 4: ``with stream as s:`` failed with TypeError both ways."""
    with recorder(tmp_path).get_or_record_sync("s", lambda: SdkLikeStream(["a", "b"])) as live:
        assert list(live) == ["a", "b"]
    with recorder(tmp_path, mode="none").get_or_record_sync("s", must_not_be_called) as stream:
        assert next(stream) == "a"
    assert list(stream) == []  # closed on leaving the block, as an SDK stream is
    replayed = recorder(tmp_path, mode="none").get_or_record_sync("s", must_not_be_called)
    replayed.close()
    assert list(replayed) == []


async def test_an_async_stream_supports_async_with_and_close(tmp_path: Path) -> None:
    async def stream() -> AsyncIterator[str]:
        for chunk in ("a", "b", "c"):
            yield chunk

    async with await recorder(tmp_path).get_or_record("s", stream) as live:
        assert [chunk async for chunk in live] == ["a", "b", "c"]
    replayed = await recorder(tmp_path, mode="none").get_or_record("s", must_not_be_awaited)
    async with replayed as opened:
        assert await opened.__anext__() == "a"
    assert [chunk async for chunk in replayed] == []
    again = await recorder(tmp_path, mode="none").get_or_record("s", must_not_be_awaited)
    await again.close()
    assert [chunk async for chunk in again] == []


def test_the_sync_twin_refuses_async_generators_with_advice(tmp_path: Path) -> None:
    async def coroutine() -> int:
        return 1

    with pytest.raises(TypeError, match=r"await recorder\.get_or_record"):
        recorder(tmp_path).get_or_record_sync("k", coroutine)


# --- modes ----------------------------------------------------------------------------


def test_replay_only_mode_fails_on_a_missing_key_naming_key_namespace_store_and_command(
    tmp_path: Path,
) -> None:
    with pytest.raises(MissingRecordingError) as caught:
        recorder(tmp_path, mode="none").get_or_record_sync("absent", must_not_be_called)

    message = str(caught.value)
    assert "'absent'" in message
    assert f"'{NAMESPACE}'" in message
    assert str(tmp_path) in message
    assert "mode='new_episodes'" in message
    assert not isinstance(caught.value, FileNotFoundError)


def test_mode_all_re_records_existing_keys_once_per_recorder(tmp_path: Path) -> None:
    recorder(tmp_path).get_or_record_sync("k", lambda: "old")
    calls = []
    again = recorder(tmp_path, mode="all")

    first = again.get_or_record_sync("k", lambda: calls.append(1) or "new")
    second = again.get_or_record_sync("k", lambda: calls.append(1) or "newer")

    assert first == second == "new"
    assert calls == [1]
    assert Store(tmp_path).get(NAMESPACE, "k") == "new"


def test_mode_off_calls_through_every_time_and_stores_nothing(tmp_path: Path) -> None:
    calls = []
    off = recorder(tmp_path, mode="off")
    off.get_or_record_sync("k", lambda: calls.append(1) or "live")
    off.get_or_record_sync("k", lambda: calls.append(1) or "live")

    assert calls == [1, 1]
    assert not tmp_path.joinpath("index").exists()


def test_unknown_modes_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"new_episodes.*use new_episodes"):
        Mode.parse("once")


def test_stats_count_hits_misses_and_recordings_as_in_the_seeds(tmp_path: Path) -> None:
    live = recorder(tmp_path)
    live.get_or_record_sync("a", lambda: 1)
    live.get_or_record_sync("a", must_not_be_called)
    live.get_or_record_sync("b", lambda: 2)
    live.get_or_record_sync("a", must_not_be_called)

    stats = live.get_stats()

    assert stats["cache_hits"] == 2
    assert stats["cache_misses"] == 2
    assert stats["recorded"] == 2
    assert stats["hit_rate"] == 0.5
    assert stats["num_cached_responses"] == 2


def test_clear_cache_rereads_the_store_and_keeps_the_recordings(tmp_path: Path) -> None:
    reader = recorder(tmp_path, mode="none")
    with pytest.raises(MissingRecordingError):
        reader.get_or_record_sync("late", must_not_be_called)
    Store(tmp_path).put(NAMESPACE, "late", "recorded elsewhere")

    reader.clear_cache()

    assert reader.get_or_record_sync("late", must_not_be_called) == "recorded elsewhere"


# --- staleness ----------------------------------------------------------------------


def test_a_schema_change_is_a_clear_error_in_replay_naming_both_versions(tmp_path: Path) -> None:
    recorder(tmp_path, schema_version="1").get_or_record_sync("k", lambda: "v1 shape")

    with pytest.raises(StaleRecordingError) as caught:
        recorder(tmp_path, mode="none", schema_version="2").get_or_record_sync(
            "k", must_not_be_called
        )

    message = str(caught.value)
    assert "'k'" in message
    assert "'1'" in message
    assert "'2'" in message
    assert "mode='all'" in message


def test_a_schema_change_re_records_when_recording(tmp_path: Path) -> None:
    recorder(tmp_path, schema_version=1).get_or_record_sync("k", lambda: "v1 shape")

    value = recorder(tmp_path, schema_version=2).get_or_record_sync("k", lambda: "v2 shape")

    assert value == "v2 shape"
    assert Store(tmp_path).entry(NAMESPACE, "k").schema == 2  # type: ignore[union-attr]


def age_entry(root: Path, key: str, days: int) -> None:
    """Make an entry look ``days`` old by editing its index, as a committed old file would."""
    index = internals(Store(root)).indexes.path(NAMESPACE)
    document = json.loads(index.read_text())
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    document["entries"][key]["recorded_at"] = old.isoformat()
    index.write_text(json.dumps(document))


def test_an_expired_recording_warns_and_replays_by_default(tmp_path: Path) -> None:
    recorder(tmp_path).get_or_record_sync("k", lambda: "old answer")
    age_entry(tmp_path, "k", days=40)

    with pytest.warns(ExpiredRecordingWarning, match=r"'k'.*40 days.*30 days"):
        value = recorder(tmp_path, mode="none", max_age="30d").get_or_record_sync(
            "k", must_not_be_called
        )
    assert value == "old answer"


def test_an_expired_recording_fails_when_asked_to(tmp_path: Path) -> None:
    recorder(tmp_path).get_or_record_sync("k", lambda: "old answer")
    age_entry(tmp_path, "k", days=40)

    with pytest.raises(ExpiredRecordingError, match=r"'k'.*40 days"):
        recorder(tmp_path, mode="none", max_age="30d", on_expired="fail").get_or_record_sync(
            "k", must_not_be_called
        )


def test_an_expired_recording_is_re_recorded_when_recording(tmp_path: Path) -> None:
    recorder(tmp_path).get_or_record_sync("k", lambda: "old answer")
    age_entry(tmp_path, "k", days=40)
    fresh = recorder(tmp_path, max_age=dt.timedelta(days=30), on_expired="rerecord")

    assert fresh.get_or_record_sync("k", lambda: "new answer") == "new answer"
    assert fresh.get_or_record_sync("k", must_not_be_called) == "new answer"


def test_a_recent_recording_is_not_expired(tmp_path: Path) -> None:
    recorder(tmp_path).get_or_record_sync("k", lambda: "answer")
    age_entry(tmp_path, "k", days=2)
    assert (
        recorder(tmp_path, mode="none", max_age="30d", on_expired="fail").get_or_record_sync(
            "k", must_not_be_called
        )
        == "answer"
    )


def test_a_miss_names_the_nearest_recorded_keys_and_what_differs(tmp_path: Path) -> None:
    """Issue 14: with request_key, a changed prompt gave only 'no recording for key
    gpt-4o-mini-2269a1…'."""
    store = Store(tmp_path)
    for prompt in ("Translate find_index", "Translate binary_search", "Summarise the docs"):
        key = request_key(model="gpt-4o-mini", prompt=prompt)
        store.put(NAMESPACE, key, {"answer": prompt}, metadata={"prompt": prompt})
    changed = "Translate find_index, in Rust"
    with pytest.raises(MissingRecordingError) as caught:
        Recorder(tmp_path, NAMESPACE).get_or_record_sync(
            request_key(model="gpt-4o-mini", prompt=changed),
            must_not_be_called,
            metadata={"prompt": changed},
        )
    nearest = caught.value.nearest  # type: ignore[attr-defined]
    assert len(nearest) == 3
    assert nearest[0].endswith('(prompt: "Translate find_index" → "Translate find_index, in Rust")')
    assert "nearest recorded keys in this namespace:" in str(caught.value)


def test_a_request_changed_under_a_fixed_key_is_stale_and_new_episodes_re_records_it(
    tmp_path: Path,
) -> None:
    """Issue 14: a prompt changed under a fixed key replayed the old answer silently."""
    first = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Translate x"}]}
    Recorder(tmp_path, NAMESPACE, mode="new_episodes").get_or_record_sync(
        "translate", lambda: {"answer": "old"}, request={**first, "api_key": "sk-1"}
    )
    same = Recorder(tmp_path, NAMESPACE).get_or_record_sync(
        "translate",
        must_not_be_called,
        request={**first, "api_key": "sk-2"},  # key rotated
    )
    assert same == {"answer": "old"}

    changed = {**first, "messages": [{"role": "user", "content": "Translate y"}]}
    with pytest.raises(StaleRecordingError) as caught:
        Recorder(tmp_path, NAMESPACE).get_or_record_sync(
            "translate", must_not_be_called, request=changed
        )
    # The path that changed, old value and new (issue 27: not just "in messages").
    assert (
        "the request changed since it was recorded: request.messages[0].content: "
        '"Translate x" → "Translate y"'
    ) in str(caught.value)
    assert "mode='new_episodes'" in str(caught.value)
    fresh = Recorder(tmp_path, NAMESPACE, mode="new_episodes").get_or_record_sync(
        "translate", lambda: {"answer": "new"}, request=changed
    )
    assert fresh == {"answer": "new"}
    # A recording made before request summaries were kept still names the part.
    store = Store(tmp_path)
    entry = store.entry(NAMESPACE, "translate")
    assert entry is not None
    bare = {k: v for k, v in entry.metadata.items() if not k.startswith("request.")}
    store.put(NAMESPACE, "translate", {"answer": "new"}, metadata=bare)
    with pytest.raises(StaleRecordingError, match=r"since it was recorded \(in messages\)"):
        Recorder(tmp_path, NAMESPACE).get_or_record_sync(
            "translate", must_not_be_called, request=first
        )
    # A call without request= replays whatever is recorded, as before.
    assert Recorder(tmp_path, NAMESPACE).get_or_record_sync("translate", must_not_be_called) == {
        "answer": "new"
    }


class StreamManager:
    """The shape of anthropic's ``client.messages.stream(...)``: a context manager, not
    iterable itself, that opens an iterable stream of events."""

    def __init__(self, events: list[dict[str, str]]) -> None:
        self.events = events
        self.exited = False

    def __enter__(self) -> Iterator[dict[str, str]]:
        return iter(self.events)

    def __exit__(self, *exc: object) -> None:
        self.exited = True


class AsyncStreamManager:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def __aenter__(self) -> AsyncIterator[str]:
        async def stream() -> AsyncIterator[str]:
            for event in self.events:
                yield event

        return stream()

    async def __aexit__(self, *exc: object) -> None:
        pass


def test_a_stream_manager_is_recorded_as_its_stream_and_replays_in_a_with_block(
    tmp_path: Path,
) -> None:
    """Issue 14: `client.messages.stream(...)` could not be recorded."""
    manager = StreamManager([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}])
    with recorder(tmp_path).get_or_record_sync("s", lambda: manager) as live:
        assert [event["text"] for event in live] == ["Hel", "lo"]
    assert manager.exited
    assert Store(tmp_path).entry(NAMESPACE, "s").stream == "sync"  # type: ignore[union-attr]
    with recorder(tmp_path, mode="none").get_or_record_sync("s", must_not_be_called) as replay:
        assert [event["text"] for event in replay] == ["Hel", "lo"]


async def test_an_async_stream_manager_is_recorded_as_its_stream(tmp_path: Path) -> None:
    async with await recorder(tmp_path).get_or_record(
        "s", lambda: AsyncStreamManager(["a", "b"])
    ) as live:
        assert [event async for event in live] == ["a", "b"]
    replayed = await recorder(tmp_path, mode="none").get_or_record("s", must_not_be_awaited)
    assert [event async for event in replayed] == ["a", "b"]


def test_a_raw_response_is_refused_with_what_to_record_instead(tmp_path: Path) -> None:
    """Issue 14: with_raw_response objects cannot be stored; the error says what to wrap."""

    class LegacyAPIResponse:
        headers = {"x-request-id": "req_1"}

        def parse(self) -> dict[str, str]:
            return {"id": "chatcmpl-1"}

    with pytest.raises(UnencodableValueError, match=r"raw HTTP response.*\.parse\(\)"):
        recorder(tmp_path).get_or_record_sync("raw", LegacyAPIResponse)
    assert Store(tmp_path).entries(NAMESPACE) == {}


def test_an_expiry_warning_names_the_callers_line_on_every_path(tmp_path: Path) -> None:
    """The replay fast path and the full lookup are different depths; the warning must
    point at the test's own line either way."""
    recorder(tmp_path).get_or_record_sync("k", lambda: "old answer")
    age_entry(tmp_path, "k", days=40)
    with pytest.warns(ExpiredRecordingWarning) as caught:
        recorder(tmp_path, mode="none", max_age="30d").get_or_record_sync("k", must_not_be_called)
    assert caught[0].filename == __file__
