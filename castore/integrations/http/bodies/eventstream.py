"""AWS event streams (``application/vnd.amazon.eventstream``), as Bedrock's
``converse_stream`` and ``invoke_model_with_response_stream`` answer.

The wire form is binary: each message is a prelude (total length, headers length, CRC32),
typed headers, a payload and a CRC32 of it all. castore stores each message as one chunk,
decoded (``{"headers": [[name, value], …], "payload": …}``, a JSON payload as JSON), so a
recording reads as data in ``castore show`` and ``castore diff``, and encodes it back,
CRCs recomputed, on replay: the SDK's parser sees the same events, one per read.
"""

from __future__ import annotations

import json
import struct
import uuid
from binascii import crc32
from typing import Any, Final

CONTENT_TYPE: Final = "application/vnd.amazon.eventstream"
FRAMING: Final = "aws-eventstream"

_PRELUDE: Final = struct.Struct(">III")
_CRC: Final = struct.Struct(">I")
#: Header value types, as the event-stream specification numbers them.
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_FIXED: Final = {_BYTE: ">b", _SHORT: ">h", _INT: ">i", _LONG: ">q", _TIMESTAMP: ">q"}


class EventStreamError(ValueError):
    """Bytes that are not a whole, intact event stream."""


def split(chunks: list[bytes], times: list[float]) -> tuple[list[bytes], list[float]]:
    """The messages in ``chunks`` (as read, at any boundaries), each with the time its
    last byte arrived. Raises :class:`EventStreamError` unless the bytes are whole
    messages with sound CRCs."""
    data = b"".join(chunks)
    ends, moment = [], 0
    for chunk, when in zip(chunks, times or [0.0] * len(chunks), strict=False):
        moment += len(chunk)
        ends.append((moment, when))
    messages, message_times, offset = [], [], 0
    while offset < len(data):
        if len(data) - offset < _PRELUDE.size:
            raise EventStreamError("the stream ends inside a message prelude")
        total = _PRELUDE.unpack_from(data, offset)[0]
        if total < _PRELUDE.size + _CRC.size or offset + total > len(data):
            raise EventStreamError("a message runs past the end of the stream")
        message = data[offset : offset + total]
        _check(message)
        messages.append(message)
        offset += total
        message_times.append(next((when for end, when in ends if end >= offset), 0.0))
    return messages, message_times


def decode(message: bytes) -> dict[str, Any]:
    """One message as plain data: headers (name, value[, type]) and the payload (JSON
    when it reads back byte for byte, else bytes)."""
    total, headers_length, _ = _PRELUDE.unpack_from(message)
    start = _PRELUDE.size
    headers = _decode_headers(message[start : start + headers_length])
    payload_bytes = message[start + headers_length : total - _CRC.size]
    return {"headers": headers, "payload": _payload_value(payload_bytes)}


def encode(event: Any) -> bytes:
    """The wire form of a decoded message (:func:`decode`'s output), CRCs computed."""
    if isinstance(event, bytes | bytearray):
        return bytes(event)  # stored raw (a recording from before framing, or by hand)
    headers = _encode_headers(event.get("headers") or [])
    payload = event.get("payload", b"")
    if not isinstance(payload, bytes | bytearray):
        payload = _compact_json(payload)
    total = _PRELUDE.size + len(headers) + len(payload) + _CRC.size
    prelude = struct.pack(">II", total, len(headers))
    prelude += _CRC.pack(crc32(prelude))
    body = prelude + headers + bytes(payload)
    return body + _CRC.pack(crc32(body))


def _check(message: bytes) -> None:
    total, headers_length, prelude_crc = _PRELUDE.unpack_from(message)
    if crc32(message[:8]) != prelude_crc:
        raise EventStreamError("a message prelude fails its CRC")
    if _PRELUDE.size + headers_length + _CRC.size > total:
        raise EventStreamError("a message's headers run past its end")
    if crc32(message[:-4]) != _CRC.unpack_from(message, total - _CRC.size)[0]:
        raise EventStreamError("a message fails its CRC")


def _payload_value(payload: bytes) -> Any:
    if payload[:1] in (b"{", b"["):
        try:
            parsed = json.loads(payload)
        except ValueError:
            return payload
        if _compact_json(parsed) == payload:
            return parsed
    return payload


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _decode_headers(raw: bytes) -> list[list[Any]]:
    headers: list[list[Any]] = []
    offset = 0
    while offset < len(raw):
        size = raw[offset]
        name = raw[offset + 1 : offset + 1 + size].decode()
        offset += 1 + size
        kind = raw[offset]
        offset += 1
        value: Any
        if kind in (_TRUE, _FALSE):
            value = kind == _TRUE
        elif kind in _FIXED:
            layout = struct.Struct(_FIXED[kind])
            value = layout.unpack_from(raw, offset)[0]
            offset += layout.size
        elif kind in (_BYTES, _STRING):
            length = struct.unpack_from(">H", raw, offset)[0]
            data = raw[offset + 2 : offset + 2 + length]
            offset += 2 + length
            value = data.decode() if kind == _STRING else data
        elif kind == _UUID:
            value = str(uuid.UUID(bytes=raw[offset : offset + 16]))
            offset += 16
        else:
            raise EventStreamError(f"header {name!r} has unknown value type {kind}")
        headers.append([name, value] if kind == _STRING else [name, value, kind])
    return headers


def _encode_headers(headers: list[list[Any]]) -> bytes:
    out = bytearray()
    for header in headers:
        name, value = header[0], header[1]
        kind = header[2] if len(header) > 2 else _STRING
        encoded_name = str(name).encode()
        out += bytes([len(encoded_name)]) + encoded_name
        if kind in (_TRUE, _FALSE):
            out += bytes([_TRUE if value else _FALSE])
        elif kind in _FIXED:
            out += bytes([kind]) + struct.pack(_FIXED[kind], value)
        elif kind in (_BYTES, _STRING):
            data = value.encode() if kind == _STRING else bytes(value)
            out += bytes([kind]) + struct.pack(">H", len(data)) + data
        elif kind == _UUID:
            out += bytes([kind]) + uuid.UUID(str(value)).bytes
        else:
            raise EventStreamError(f"header {name!r} has unknown value type {kind}")
    return bytes(out)
