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
