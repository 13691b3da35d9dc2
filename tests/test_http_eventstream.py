"""AWS event streams, as castore stores them (each message decoded) and replays them
(encoded again): the replayed bytes are the recorded bytes."""

from __future__ import annotations

import struct
import uuid
from binascii import crc32

from castore.integrations.http.bodies import eventstream


def message(headers: list[tuple[str, int, bytes]], payload: bytes) -> bytes:
    """A message written from the specification: (name, type, value bytes) headers."""
    raw = b"".join(
        bytes([len(name)]) + name.encode() + bytes([kind]) + value for name, kind, value in headers
    )
    prelude = struct.pack(">II", 12 + len(raw) + len(payload) + 4, len(raw))
    prelude += struct.pack(">I", crc32(prelude))
    body = prelude + raw + payload
    return body + struct.pack(">I", crc32(body))


def string(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


EVERY_HEADER_TYPE = [
    (":event-type", 7, string("contentBlockDelta")),
    (":content-type", 7, string("application/json")),
    ("flag", 0, b""),
    ("off", 1, b""),
    ("byte", 2, struct.pack(">b", -3)),
    ("short", 3, struct.pack(">h", 300)),
    ("int", 4, struct.pack(">i", 1)),
    ("long", 5, struct.pack(">q", 2**40)),
    ("blob", 6, struct.pack(">H", 3) + b"\x00\xff\x01"),
    ("when", 8, struct.pack(">q", 1_750_000_000_000)),
    ("id", 9, uuid.UUID(int=7).bytes),
]


def test_every_header_type_replays_byte_for_byte_every_time() -> None:
    recorded = message(EVERY_HEADER_TYPE, b'{"delta":{"text":"h\xc3\xa9llo"}}')
    stored = eventstream.decode(recorded)
    assert stored["payload"] == {"delta": {"text": "héllo"}}
    # Encoded twice: the second time, its headers come from the encoder's cache.
    assert eventstream.encode(stored) == recorded
    assert eventstream.encode(eventstream.decode(recorded)) == recorded


def test_equal_header_values_of_other_types_encode_as_their_type() -> None:
    as_int = eventstream.encode({"headers": [["n", 1, 4]], "payload": b""})
    as_long = eventstream.encode({"headers": [["n", 1, 5]], "payload": b""})
    as_true = eventstream.encode({"headers": [["n", True, 0]], "payload": b""})
    assert len({as_int, as_long, as_true}) == 3
    assert eventstream.decode(as_true)["headers"] == [["n", True, 0]]


def test_a_header_value_edited_by_hand_into_a_list_still_encodes() -> None:
    stored = {"headers": [["blob", [0, 255, 1], 6]], "payload": b"x"}
    assert eventstream.decode(eventstream.encode(stored))["headers"] == [
        ["blob", b"\x00\xff\x01", 6]
    ]
