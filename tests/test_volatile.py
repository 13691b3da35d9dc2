"""The parts of an answer that change on every call (``_recording.volatile``), and the
readable view they are named on (``_recording.answer_views``): pure functions, each rule
on its own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from castore._recording.answer_views import readable, server_sent_events
from castore._recording.volatile import DEFAULT, Volatility
from castore.integrations.http.bodies import eventstream


def http(
    body: Any, *, headers: list[list[str]] | None = None, times: float = 0.1
) -> dict[str, Any]:
    chunks = body if isinstance(body, list) else [json.dumps(body).encode()]
    return {
        "status": 200,
        "reason": "OK",
        "http_version": "HTTP/1.1",
        "headers": headers or [["content-type", "application/json"]],
        "chunks": chunks,
        "times": [times] * len(chunks),
    }


def openai(number: int, content: str = "hello") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 1_700_000_000 + number,
        "system_fingerprint": f"fp_{number}",
        "choices": [
            {
                "message": {
                    "content": content,
                    "tool_calls": [{"id": f"call_{number}", "type": "function"}],
                }
            }
        ],
    }


def test_openai_ids_stamps_and_fingerprints_do_not_count_but_the_content_does() -> None:
    assert DEFAULT.same(http(openai(1)), http(openai(2), times=9.0))
    assert not DEFAULT.same(http(openai(1)), http(openai(2, "goodbye")))


def test_every_chunk_of_a_stream_drops_its_minted_parts() -> None:
    def stream(number: int, text: str) -> dict[str, Any]:
        events = [
            {
                "id": f"c-{number}",
                "object": "chat.completion.chunk",
                "created": number,
                "obfuscation": "x" * number,
                "choices": [{"delta": {"content": piece}}],
            }
            for piece in text
        ]
        chunks = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        return http([*chunks, b"data: [DONE]\n\n"], headers=[["content-type", "text/event-stream"]])

    assert DEFAULT.same(stream(1, "abc"), stream(2, "abc"))
    assert not DEFAULT.same(stream(1, "abc"), stream(2, "abd"))


def test_volatile_headers_by_name_prefix_and_case() -> None:
    def headers(number: int, extra: str = "") -> list[list[str]]:
        return [
            ["Date", f"Mon, {number} Jan"],
            ["X-Request-Id", f"req_{number}"],
            ["cf-ray", f"{number}-AMS"],
            ["x-ratelimit-remaining-tokens", str(number)],
            ["content-type", "application/json"],
            ["x-model", extra],
        ]

    assert DEFAULT.same(http({}, headers=headers(1)), http({}, headers=headers(2)))
    assert not DEFAULT.same(http({}, headers=headers(1)), http({}, headers=headers(1, "v2")))


def test_anthropic_messages_in_json_and_in_message_start() -> None:
    def message(number: int) -> dict[str, Any]:
        return {
            "id": f"msg_{number}",
            "type": "message",
            "content": [{"type": "tool_use", "id": f"toolu_{number}", "name": "f", "input": {}}],
        }

    assert DEFAULT.same(http(message(1)), http(message(2)))
    start = [
        b"event: message_start\ndata: "
        + json.dumps({"type": "message_start", "message": message(n)}).encode()
        + b"\n\n"
        for n in (1, 2)
    ]
    headers = [["content-type", "text/event-stream"]]
    assert DEFAULT.same(http([start[0]], headers=headers), http([start[1]], headers=headers))


def test_gemini_response_ids() -> None:
    def answer(number: int) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"parts": [{"text": "hi"}]}}],
            "responseId": f"r{number}",
            "createTime": f"t{number}",
        }

    assert DEFAULT.same(http(answer(1)), http(answer(2)))


def test_bedrock_padding_and_latency_inside_an_event_stream() -> None:
    def stream(padding: str, latency: int, text: str = "hi") -> dict[str, Any]:
        events = [
            {
                "headers": [[":event-type", "contentBlockDelta"]],
                "payload": {"delta": {"text": text}, "p": padding},
            },
            {
                "headers": [[":event-type", "metadata"]],
                "payload": {"metrics": {"latencyMs": latency}, "p": padding},
            },
        ]
        value = http(
            [eventstream.encode(event) for event in events],
            headers=[["content-type", eventstream.CONTENT_TYPE]],
        )
        value["framing"] = eventstream.FRAMING
        value["chunks"] = events
        return value

    assert DEFAULT.same(stream("abc", 120), stream("abcdefg", 98))
    assert not DEFAULT.same(stream("abc", 120), stream("abc", 120, "ho"))


def test_an_sdk_objects_request_id() -> None:
    typed = {
        "$castore_type": "openai.types.chat:ChatCompletion",
        "value": openai(1),
        "private": {"_request_id": "req_1"},
    }
    other = {**typed, "value": openai(2), "private": {"_request_id": "req_2"}}
    assert DEFAULT.same(typed, other)


def test_a_field_named_p_outside_an_event_stream_counts() -> None:
    assert not DEFAULT.same(http({"p": 1}), http({"p": 2}))


def test_more_parts_are_named_with_paths_and_the_defaults_can_be_left_out() -> None:
    def answer(trace: str, date: str) -> dict[str, Any]:
        return http({"meta": {"trace_id": trace}}, headers=[["x-trace", trace], ["date", date]])

    assert not DEFAULT.same(answer("a", "1"), answer("b", "1"))
    assert Volatility(["$..trace_id", "headers.X-Trace"]).same(answer("a", "1"), answer("b", "2"))
    assert not Volatility(defaults=False).same(answer("a", "1"), answer("a", "2"))


@pytest.mark.parametrize(
    ("raw", "events"),
    [
        (b'data: {"a": 1}\n\n', [{"data": {"a": 1}}]),
        (b"event: ping\ndata: x\ndata: y\n\n", [{"event": "ping", "data": "x\ny"}]),
        (b": comment\r\nid: 7\r\ndata: [DONE]\r\n\r\n", [{"id": "7", "data": "[DONE]"}]),
    ],
)
def test_server_sent_events(raw: bytes, events: list[dict[str, Any]]) -> None:
    assert server_sent_events(raw) == events


def test_the_readable_view_names_headers_in_lower_case_and_parses_the_body() -> None:
    view = readable(
        http(
            {"a": 1},
            headers=[["Content-Type", "application/json"], ["Set-Thing", "1"], ["set-thing", "2"]],
        )
    )
    assert view["headers"] == {"content-type": "application/json", "set-thing": ["1", "2"]}
    assert view["body"] == {"a": 1}
    assert readable({"plain": "value"}) == {"plain": "value"}
