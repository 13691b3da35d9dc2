"""grpcio: unary and server-streaming calls, on sync channels and ``grpc.aio`` alike.

**Where.** The multicallables, per call: sync ``_UnaryUnaryMultiCallable.__call__``,
``with_call`` and ``future``, ``_UnaryStreamMultiCallable.__call__`` (and its
single-threaded twin), and ``grpc.aio``'s ``UnaryUnaryMultiCallable.__call__`` and
``UnaryStreamMultiCallable.__call__``. A multicallable is what a generated stub holds for
each method, and its call is where the request leaves for the channel, so:

* a channel or stub built before castore turned on (a session fixture's client, an SDK
  made at import) is answered from the store too, which patching the channel factories
  (``grpc.secure_channel``…) would miss;
* sync interceptors (``grpc.intercept_channel``, xai-sdk's timeout interceptor) run as they
  do live, since they call the channel's multicallables beneath them;
* ``grpc.aio`` interceptors (given to ``grpc.aio.secure_channel(interceptors=...)``) run
  inside the aio multicallable's call: castore answers before them, so on replay they do
  not run (they ran while recording, and their effect on the answer was recorded).

**The request** is an :class:`HttpRequest`: method ``GRPC``, URL
``grpc://host:port/package.Service/Method`` (the channel's target), headers the call's
metadata (counted only if named in ``match_headers``, never stored), and the request
message as its body: a protobuf message by value (its JSON form, keys sorted, so the key
does not depend on how maps were serialized, and a missing recording's nearest key names
the field that changed), anything else as the bytes its serializer makes.

**The answer** is an :class:`~castore.integrations.http.rpc.RpcAnswer`: status, details,
initial and trailing metadata (secret names such as ``authorization`` and ``x-api-key``
dropped, as ``drop_headers`` says), and each response message's bytes with its time.
Captured by wrapping the call's response deserializer, so the bytes are the ones received.
A status other than ``OK`` is recorded and replayed as the error it was, except
``UNAVAILABLE``, ``DEADLINE_EXCEEDED`` and ``CANCELLED``: the call got no answer, and the
error reaches the client as it would without castore.

**A miss** is grpcio's own error with status ``UNAVAILABLE`` (what a call to a server
that is down raises) whose details carry castore's message, and castore's
``MissingRecordingError``.

Not covered: client-streaming and bidirectional calls (``stream_unary``,
``stream_stream``), which go out as they would without castore.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Final

from castore.errors import MissingRecordingError, StaleRecordingError
from castore.integrations.http.exchange import HttpRequest
from castore.integrations.http.misses import as_client_error
from castore.integrations.http.recorder import HttpRecorder, Stopwatch, active_recorder
from castore.integrations.http.rpc import UNANSWERED_CODES, RpcAnswer, metadata_pairs

PACKAGES: Final = ("grpc",)
#: Channel target schemes whose address names no host a key could use.
_LOCAL_SCHEMES: Final = ("unix", "unix-abstract", "vsock")


def patch(module: ModuleType) -> Callable[[], None]:
    sync = importlib.import_module("grpc._channel")
    aio = importlib.import_module("grpc.aio._channel")
    unary = sync._UnaryUnaryMultiCallable
    with_call = unary.with_call
    replaced: list[tuple[type, str, Any]] = [
        (unary, "__call__", _sync_unary(module, with_call, unary.__call__, "response")),
        (unary, "with_call", _sync_unary(module, with_call, with_call, "with_call")),
        (unary, "future", _sync_unary(module, with_call, unary.future, "future")),
        (aio.UnaryUnaryMultiCallable, "__call__", _aio_call(module, aio.UnaryUnaryMultiCallable)),
        (aio.UnaryStreamMultiCallable, "__call__", _aio_call(module, aio.UnaryStreamMultiCallable)),
    ]
    for stream in (sync._UnaryStreamMultiCallable, sync._SingleThreadedUnaryStreamMultiCallable):
        replaced.append((stream, "__call__", _sync_stream(module, stream.__call__)))
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in replaced]
    for owner, name, replacement in replaced:
        setattr(owner, name, replacement)

    def undo() -> None:
        for owner, name, original in originals:
            setattr(owner, name, original)

    return undo


# --- sync channels ---------------------------------------------------------------------


def _sync_unary(
    module: ModuleType, with_call: Callable[..., Any], original: Callable[..., Any], shape: str
) -> Callable[..., Any]:
    """A unary method (``__call__``, ``with_call`` or ``future``, as ``shape`` says)."""

    def call(multicallable: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return original(multicallable, request, *args, **kwargs)
        neutral = _sync_request(multicallable, request, args, kwargs)
        if http.passes_through(neutral):
            return original(multicallable, request, *args, **kwargs)

        def live() -> dict[str, Any]:
            capture = _Capture(multicallable._response_deserializer)
            try:
                _, rpc = with_call(capture.on(multicallable), request, *args, **kwargs)
            except module.RpcError as error:
                return _stored(http, neutral, _failed(error, capture))
            return _stored(http, neutral, _finished_sync(rpc, capture))

        replayed = _replayed_sync(module, http, neutral, live, multicallable)
        if shape == "future":
            return replayed
        response = replayed.result()
        return (response, replayed) if shape == "with_call" else response

    call.__name__ = getattr(original, "__name__", "__call__")
    return call


def _sync_stream(module: ModuleType, original: Callable[..., Any]) -> Callable[..., Any]:
    def call(multicallable: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return original(multicallable, request, *args, **kwargs)
        neutral = _sync_request(multicallable, request, args, kwargs)
        if http.passes_through(neutral):
            return original(multicallable, request, *args, **kwargs)

        def live() -> dict[str, Any]:
            capture = _Capture(multicallable._response_deserializer)
            rpc = original(capture.on(multicallable), request, *args, **kwargs)
            try:
                for _ in rpc:
                    pass
            except module.RpcError as error:
                return _stored(http, neutral, _failed(error, capture))
            return _stored(http, neutral, _finished_sync(rpc, capture))

        return _replayed_sync(module, http, neutral, live, multicallable)

    return call


def _sync_request(
    multicallable: Any, request: Any, args: Sequence[Any], kwargs: dict[str, Any]
) -> HttpRequest:
    # (request, timeout, metadata, credentials, wait_for_ready, compression)
    metadata = kwargs.get("metadata", args[1] if len(args) > 1 else None)
    return _neutral(
        multicallable._target,
        multicallable._method,
        request,
        multicallable._request_serializer,
        metadata,
    )


def _replayed_sync(
    module: ModuleType,
    http: HttpRecorder,
    neutral: HttpRequest,
    live: Callable[[], dict[str, Any]],
    multicallable: Any,
) -> Any:
    """The recorded call (recording it first in a recording mode), or the miss as a call
    that failed with ``UNAVAILABLE``: raised by a unary call, returned by ``future()``
    and by a streaming call (whose iteration raises it), as grpcio does offline."""
    from castore.integrations.http.clients.grpc_calls import ReplayedCall  # noqa: PLC0415

    try:
        value = http.recorded(neutral, live)
    except (MissingRecordingError, StaleRecordingError) as miss:

        def init(instance: Any, message: str) -> None:
            ReplayedCall.__init__(instance, _unavailable(message), None, None)

        return as_client_error(miss, ReplayedCall, init)
    return ReplayedCall(
        RpcAnswer.from_value(value), multicallable._response_deserializer, http.pace
    )


def _finished_sync(rpc: Any, capture: _Capture) -> RpcAnswer:
    return RpcAnswer(
        code=rpc.code().name,
        details=rpc.details() or "",
        initial_metadata=metadata_pairs(rpc.initial_metadata()),
        trailing_metadata=metadata_pairs(rpc.trailing_metadata()),
        messages=capture.messages,
        times=capture.times,
    )


# --- grpc.aio ----------------------------------------------------------------------------


def _aio_call(module: ModuleType, owner: type) -> Callable[..., Any]:
    from castore.integrations.http.clients import grpc_calls  # noqa: PLC0415 - needs grpcio

    original = owner.__dict__["__call__"]
    streaming = "Stream" in owner.__name__
    replayed_class = (
        grpc_calls.ReplayedUnaryStreamCall if streaming else grpc_calls.ReplayedUnaryUnaryCall
    )

    def call(multicallable: Any, request: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        http = active_recorder()
        if http is None:
            return original(multicallable, request, **kwargs)
        neutral = _neutral(
            multicallable._channel.target,  # the Cython channel's target, as bytes
            multicallable._method,
            request,
            multicallable._request_serializer,
            kwargs.get("metadata"),
        )
        if http.passes_through(neutral):
            return original(multicallable, request, **kwargs)

        async def live() -> dict[str, Any]:
            capture = _Capture(multicallable._response_deserializer)
            rpc = original(capture.on(multicallable), request, **kwargs)
            try:
                if streaming:
                    async for _ in rpc:
                        pass
                else:
                    await rpc
            except module.aio.AioRpcError as error:
                return _stored(http, neutral, _failed(error, capture))
            answer = RpcAnswer(
                code=(await rpc.code()).name,
                details=await rpc.details() or "",
                initial_metadata=metadata_pairs(await rpc.initial_metadata()),
                trailing_metadata=metadata_pairs(await rpc.trailing_metadata()),
                messages=capture.messages,
                times=capture.times,
            )
            return _stored(http, neutral, answer)

        async def lookup() -> RpcAnswer:
            __tracebackhide__ = True
            try:
                value = await http.recorded_async(neutral, live)
            except (MissingRecordingError, StaleRecordingError) as miss:
                raise _aio_unavailable(module, miss) from None
            return RpcAnswer.from_value(value)

        return replayed_class(
            multicallable._loop, lookup(), multicallable._response_deserializer, http.pace
        )

    return call


def _aio_unavailable(module: ModuleType, miss: Exception) -> BaseException:
    error_class = module.aio.AioRpcError

    def init(instance: Any, message: str) -> None:
        empty = module.aio.Metadata()
        error_class.__init__(instance, module.StatusCode.UNAVAILABLE, empty, empty, message)

    return as_client_error(miss, error_class, init)  # type: ignore[arg-type]


# --- shared --------------------------------------------------------------------------------


class _Capture:
    """A call's response deserializer, wrapped to keep each message's bytes as received
    and its time since the call began."""

    def __init__(self, deserializer: Callable[[bytes], Any] | None) -> None:
        self._deserializer = deserializer
        self._stopwatch = Stopwatch()
        self.messages: list[bytes] = []
        self.times: list[float] = []

    def __call__(self, data: bytes) -> Any:
        self.messages.append(bytes(data))
        self.times.append(self._stopwatch.lap())
        return data if self._deserializer is None else self._deserializer(data)

    def on(self, multicallable: Any) -> Any:
        """A copy of ``multicallable`` that deserializes through this capture (a stub's
        multicallable is shared by threads: the original is left alone)."""
        twin = copy.copy(multicallable)
        twin._response_deserializer = self
        return twin


def _neutral(
    target: bytes | str,
    method: bytes | str,
    request: Any,
    serializer: Callable[[Any], bytes] | None,
    metadata: Any,
) -> HttpRequest:
    content, content_type = _request_body(request, serializer)
    headers = [("content-type", content_type)]
    headers += [(name, value) for name, value in metadata_pairs(metadata) if isinstance(value, str)]
    return HttpRequest.build(
        "GRPC",
        f"grpc://{authority(_text(target))}{_text(method)}",
        headers,
        content,
        client="grpc",
    )


def authority(target: str) -> str:
    """The ``host:port`` a channel target names: ``dns:///api.x.ai:443``,
    ``ipv4:127.0.0.1:50051`` and ``localhost:50051`` alike (``localhost`` for a socket
    file)."""
    scheme, colon, rest = target.partition(":")
    if not colon or scheme not in ("dns", "ipv4", "ipv6", *_LOCAL_SCHEMES):
        return target
    if scheme in _LOCAL_SCHEMES:
        return "localhost"
    return rest.split("/")[-1].split(",")[0]


def _request_body(request: Any, serializer: Callable[[Any], bytes] | None) -> tuple[bytes, str]:
    """The request message as its key sees it, and the content type that says how."""
    as_json = _protobuf_json(request)
    if as_json is not None:
        return as_json, "application/json"
    data = request if serializer is None else serializer(request)
    return bytes(data), "application/grpc"


def _protobuf_json(message: Any) -> bytes | None:
    """A protobuf message's JSON form (field names as in the .proto), or None for any
    other request; the protobuf package is there whenever a protobuf message is."""
    if not (hasattr(message, "DESCRIPTOR") and hasattr(message, "SerializeToString")):
        return None
    try:
        from google.protobuf import json_format  # noqa: PLC0415
    except ImportError:
        return None
    fields = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()


def _failed(error: Any, capture: _Capture) -> RpcAnswer:
    """A call that ended with an error status, as recorded; one that got no answer
    (:data:`UNANSWERED_CODES`) is raised to the client instead, and nothing is stored."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    if code is None or code.name in UNANSWERED_CODES:
        raise error
    return RpcAnswer(
        code=code.name,
        details=error.details() or "",
        initial_metadata=metadata_pairs(error.initial_metadata()),
        trailing_metadata=metadata_pairs(error.trailing_metadata()),
        messages=capture.messages,
        times=capture.times,
    )


def _stored(http: HttpRecorder, request: HttpRequest, answer: RpcAnswer) -> dict[str, Any]:
    """What is kept of a live call: its metadata without secrets; an error status is
    named in the session report, as an HTTP error answer is."""
    if answer.code != "OK":
        http.note_error_answer(answer.code, request)
    return answer.without(http.drop_headers).to_value()


def _unavailable(message: str) -> RpcAnswer:
    return RpcAnswer(code="UNAVAILABLE", details=message)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
