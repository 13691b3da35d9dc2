"""gRPC calls recorded and replayed by ``castore_http``'s ``grpc`` adapter: unary and
server-streaming, sync channels and ``grpc.aio``, set up as xai-sdk sets up its channels
(local credentials plus an ``authorization`` call credential, timeout interceptors),
against a real grpcio server on loopback, then replayed with that server stopped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import zstandard
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from castore import Recorder
from castore.errors import MissingRecordingError
from castore.integrations.http import HttpRecorder
from castore.integrations.http.clients.grpc import authority
from tests.grpc_server import SECRET, SERVICE, ChatServer


class _ApiKey(grpc.AuthMetadataPlugin):  # type: ignore[misc]
    def __call__(self, context: Any, callback: Any) -> None:
        callback((("authorization", SECRET),), None)


class _Timeout(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details._replace(timeout=30), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details._replace(timeout=30), request)


class _AioUnaryTimeout(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await (await continuation(details._replace(timeout=30), request))


class _AioStreamTimeout(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(timeout=30), request)


def _credentials() -> Any:
    return grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.metadata_call_credentials(_ApiKey())
    )


def _method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def exercise_sync(target: str) -> list[Any]:
    """Every sync call shape, as xai-sdk's sync client makes them; what the client saw."""
    channel = grpc.intercept_channel(grpc.secure_channel(target, _credentials()), _Timeout())
    complete = channel.unary_unary(_method("Complete"))
    seen: list[Any] = [complete(b"hello"), complete(b"hello")]  # a repeat: its own answer
    response, call = complete.with_call(b"with-call", metadata=(("x-trace", "1"),))
    seen += [response, call.code().name, call.initial_metadata(), call.trailing_metadata()]
    seen.append(complete.future(b"future").result())
    seen.append(list(channel.unary_stream(_method("Stream"))(b"count")))
    with pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(_method("Refuse"))(b"nope")
    seen += [refused.value.code().name, refused.value.details()]
    channel.close()
    return seen


async def exercise_aio(target: str) -> list[Any]:
    """Every ``grpc.aio`` call shape, as xai-sdk's async client makes them."""
    interceptors = [_AioUnaryTimeout(), _AioStreamTimeout()]
    async with grpc.aio.secure_channel(target, _credentials(), interceptors=interceptors) as chan:
        call = chan.unary_unary(_method("Complete"))(b"aio")
        seen: list[Any] = [await call, await call.code(), list(await call.initial_metadata())]
        stream = chan.unary_stream(_method("Stream"))(b"aio-count")
        seen.append([message async for message in stream])
        reader = chan.unary_stream(_method("Stream"))(b"read")
        seen += [await reader.read(), await reader.read(), await reader.read()]
        seen.append(await reader.read() is grpc.aio.EOF)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await chan.unary_unary(_method("Refuse"))(b"nope-aio")
        seen += [refused.value.code().name, refused.value.details()]
    return seen


def test_grpc_calls_record_then_replay_with_the_server_stopped(tmp_path: Path) -> None:
    server = ChatServer(delay=0.1, local_credentials=True).start()
    try:
        with HttpRecorder(Recorder(tmp_path, "grpc", mode="all")).active() as http:
            live = exercise_sync(server.target), asyncio.run(exercise_aio(server.target))
    finally:
        server.stop()
    calls = server.calls
    assert calls == 10
    assert live[0][0] != live[0][1]  # the repeat got its own answer live…
    assert live[0][7] == [b"count-0|id-5", b"count-1|id-5", b"count-2|id-5"]
    assert ("authorization", SECRET) not in live[0][4]  # the secret is not even handed back
    assert http.error_answers == [
        f"NOT_FOUND GRPC localhost/{SERVICE}/Refuse",
        f"NOT_FOUND GRPC localhost/{SERVICE}/Refuse",
    ]

    with HttpRecorder(Recorder(tmp_path, "grpc", mode="none")).active():
        replayed = exercise_sync(server.target), asyncio.run(exercise_aio(server.target))
    assert replayed == live  # …and replays in recorded order, every message in its place
    assert server.calls == calls

    blobs = b"".join(
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
        for path in (tmp_path / "blobs").rglob("*.zst")
    )
    assert b"x-call-id" in blobs and b"grpc-SECRET" not in blobs

    # pace=1.0: the stream's messages arrive as far apart as they did live.
    with HttpRecorder(Recorder(tmp_path, "grpc", mode="none"), pace=1.0).active():
        channel = grpc.secure_channel(server.target, _credentials())
        started = time.perf_counter()
        assert len(list(channel.unary_stream(_method("Stream"))(b"count"))) == 3
        assert time.perf_counter() - started >= 0.3 * 0.8


def test_a_missing_grpc_recording_is_grpcs_unavailable_and_castores_miss(
    tmp_path: Path,
) -> None:
    """Nothing is recorded and no server runs: each call fails as grpcio fails offline,
    with castore's message in its details, and ``except MissingRecordingError`` works."""
    target = "127.0.0.1:9"
    with HttpRecorder(Recorder(tmp_path, "grpc", mode="none")).active():
        channel = grpc.insecure_channel(target)
        with pytest.raises(grpc.RpcError) as unary:
            channel.unary_unary(_method("Complete"))(b"never recorded")
        stream = channel.unary_stream(_method("Stream"))(b"never recorded either")
        with pytest.raises(grpc.RpcError) as streamed:
            next(stream)

        async def aio() -> BaseException:
            async with grpc.aio.insecure_channel(target) as chan:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await chan.unary_unary(_method("Complete"))(b"aio, never recorded")
                return raised.value

        aio_error = asyncio.run(aio())
    for error, method in ((unary.value, "Complete"), (streamed.value, "Stream")):
        assert isinstance(error, MissingRecordingError)
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert f"no recording for key 'GRPC 127.0.0.1/{SERVICE}/{method}-" in error.details()
    assert isinstance(aio_error, MissingRecordingError)
    assert isinstance(aio_error, grpc.aio.AioRpcError)
    assert aio_error.code() is grpc.StatusCode.UNAVAILABLE
    assert "no recording for key 'GRPC 127.0.0.1" in str(aio_error)


def _protobuf_request_class() -> Any:
    """A protobuf message class built from a hand-made descriptor (no generated code):
    ``test.Request {string prompt = 1; map<string, string> tags = 2;}``."""

    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="castore_test.proto", package="test")
    message = file.message_type.add(name="Request")
    message.field.add(name="prompt", number=1, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    entry = message.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    message.field.add(
        name="tags",
        number=2,
        type=proto.TYPE_MESSAGE,
        type_name=".test.Request.TagsEntry",
        label=proto.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.Request"))


def test_a_protobuf_request_is_keyed_by_value_and_a_miss_names_the_field(
    tmp_path: Path,
) -> None:
    """Protobuf does not promise one encoding per message (field order, map order): the
    key reads the message by value, so another encoding of it replays the recording. A
    changed field misses, and the nearest recording's hint names that field."""
    request_class = _protobuf_request_class()
    request = request_class(prompt="hi", tags={"a": "1", "b": "2"})

    def fields_reversed(message: Any) -> bytes:
        """Another valid encoding of ``message``: its tags first, then its prompt."""
        tags = request_class(tags=message.tags).SerializeToString()
        return tags + request_class(prompt=message.prompt).SerializeToString()  # type: ignore[no-any-return]

    assert fields_reversed(request) != request.SerializeToString()
    assert request_class.FromString(fields_reversed(request)) == request
    server = ChatServer().start()

    def complete(request: Any, serializer: Any = request_class.SerializeToString) -> bytes:
        channel = grpc.insecure_channel(server.target)
        method = channel.unary_unary(_method("Complete"), request_serializer=serializer)
        return method(request)  # type: ignore[no-any-return]

    try:
        with HttpRecorder(Recorder(tmp_path, "grpc", mode="all")).active():
            live = complete(request)
    finally:
        server.stop()
    with HttpRecorder(Recorder(tmp_path, "grpc", mode="none")).active():
        assert complete(request, fields_reversed) == live
        with pytest.raises(MissingRecordingError) as missed:
            complete(request_class(prompt="hullo", tags={"a": "1", "b": "2"}))
    assert '(body.prompt: "hi" → "hullo")' in str(missed.value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("api.x.ai:443", "api.x.ai:443"),
        ("dns:///api.x.ai:443", "api.x.ai:443"),
        ("dns://8.8.8.8/api.x.ai", "api.x.ai"),
        ("ipv4:127.0.0.1:50051,127.0.0.2:50051", "127.0.0.1:50051"),
        ("ipv6:[::1]:50051", "[::1]:50051"),
        ("unix:/tmp/socket", "localhost"),
        ("localhost:50051", "localhost:50051"),
    ],
)
def test_a_channel_target_names_the_host_of_the_key(target: str, expected: str) -> None:
    assert authority(target) == expected


SESSION_SUITE = """
import os

import grpc
import pytest

pytestmark = pytest.mark.castore_http
TARGET = os.environ["GRPC_TARGET"]
RECORDING = os.environ.get("RECORD_FIXTURES") == "true"


def test_unary_and_an_error_answer():
    channel = grpc.insecure_channel(TARGET)
    assert channel.unary_unary("/test.Chat/Complete")(b"q").startswith(b"answer:q|id-")
    with pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary("/test.Chat/Refuse")(b"m")
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND


async def test_aio_stream():
    async with grpc.aio.insecure_channel(TARGET) as channel:
        stream = channel.unary_stream("/test.Chat/Stream")(b"s")
        assert [m.split(b"|")[0] async for m in stream] == [b"s-0", b"s-1", b"s-2"]


def test_a_swallowed_miss_still_fails():
    prompt = b"recorded" if RECORDING else b"changed since"
    try:
        grpc.insecure_channel(TARGET).unary_unary("/test.Chat/Complete")(prompt)
    except grpc.RpcError:
        pass  # an SDK's fallback, or a test's except Exception
"""


def test_the_castore_http_marker_records_grpc_in_a_real_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the marker, in real pytest sessions: recorded with the server up (its error
    answer named in the report), replayed in CI with it stopped; a miss the test
    swallows fails the test with castore's message."""
    pytester.makepyfile(test_rpc=SESSION_SUITE)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "castore_root = recordings\n"
    )
    server = ChatServer().start()
    monkeypatch.setenv("GRPC_TARGET", server.target)
    monkeypatch.delenv("CI", raising=False)
    with monkeypatch.context() as recording:
        recording.setenv("RECORD_FIXTURES", "true")
        try:
            recorded = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        finally:
            server.stop()
    recorded.assert_outcomes(passed=3)
    recorded.stdout.fnmatch_lines(
        ["recorded 1 error answer*", f"  NOT_FOUND GRPC 127.0.0.1/{SERVICE}/Refuse"]
    )
    calls = server.calls

    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=2, failed=1)
    replayed.stdout.fnmatch_lines(
        [
            "*the code under test caught the error, so the test fails here*",
            f"*no recording for key 'GRPC 127.0.0.1/{SERVICE}/Complete-*",
        ]
    )
    assert server.calls == calls == 4
