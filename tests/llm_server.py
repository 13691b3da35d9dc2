"""A loopback server that speaks enough of the OpenAI, Anthropic, Gemini and Bedrock HTTP
APIs for the real SDKs: chat completions (JSON, server-sent events, structured output),
messages (JSON, server-sent events), Gemini's generateContent (JSON, server-sent events)
and Bedrock's converse (JSON) and converse-stream (an AWS event stream, written here
byte by byte from the specification), with request-id headers, as the real services send
them.

Answers are derived from the request (the last user message), so a changed prompt gives a
changed answer, and every response carries a fresh request id, so a test can tell a replay
(the recorded id) from a live call (a new one). ``requests`` counts what reached the
server: a replay must leave it unchanged.

Run as ``python -m tests.llm_server`` it prints its base URL and serves until killed.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import secrets
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli
import zstandard

from bench.client_payloads import aws_event  # the benchmark's answer server encodes the same


class LLMServer:
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port."""

    def __init__(self, delay: float = 0.0, gap: float = 0.0, *, volatile: bool = False) -> None:
        self.delay = delay
        """Seconds each answer waits, as a real model would (the issue asks 0.5-1 s)."""
        self.gap = gap
        """Seconds between the chunks of a stream: the client then reads one per read, so
        a live run's chunk boundaries are the server's, as with a real model."""
        self.volatile = volatile
        """Answer as the real APIs do, with what they mint per call: a ``date`` header,
        random request and body ids, ``created`` from the clock, a system fingerprint,
        stream obfuscation and processing times, and chunks at uneven intervals; the
        content stays the same for the same request."""
        self.requests = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        #: serve_forever looks for shutdown() every poll_interval: 0.5 s by default, which
        #: every stop() waited out (0.43 s on average, a test's wall time for nothing).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def next_request_id(self) -> str:
        with self._lock:
            self.requests += 1
            return f"req_{next(self._ids):06d}"


def _handler_for(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            request_id = server.next_request_id()
            delay = float(self.headers.get("x-test-delay") or server.delay)
            if delay:
                time.sleep(delay)
            encoding = self.path[1:].split("?")[0]
            if encoding in ENCODERS:
                self._send_encoded(body, request_id, encoding)
                return
            path = self.path.split("?")[0].removeprefix("/v1")
            if path == "/chat/completions":
                self._openai(body, request_id)
            elif path == "/messages":
                self._anthropic(body, request_id)
            elif path.startswith("/model/") and path.endswith("/converse"):
                self._bedrock(body, request_id)
            elif path.startswith("/model/") and path.endswith("/converse-stream"):
                self._bedrock_stream(body, request_id)
            elif ":generateContent" in path or ":streamGenerateContent" in path:
                self._gemini(body, request_id, stream="streamGenerate" in path)
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}}, request_id)

        def do_GET(self) -> None:
            request_id = server.next_request_id()
            if self.path.startswith("/stream"):
                self._send_events(
                    ((name, {"n": n}) for n, name in enumerate(("a", "b", "c"))),
                    request_id,
                )
                return
            self._send_json(200, {"path": self.path, "id": request_id}, request_id)

        def _bedrock(self, body: dict[str, Any], request_id: str) -> None:
            text = f"echo: {_bedrock_text(body)}"
            self._send_json(
                200,
                {
                    "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                    "metrics": {"latencyMs": 120},
                },
                request_id,
                amazon=True,
            )

        def _bedrock_stream(self, body: dict[str, Any], request_id: str) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/vnd.amazon.eventstream")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("x-amzn-requestid", request_id)
            self.end_headers()
            text = f"echo: {_bedrock_text(body)}"
            events = [("messageStart", {"role": "assistant"})]
            events += [
                ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word + " "}})
                for word in text.split(" ")
            ]
            events += [
                ("contentBlockStop", {"contentBlockIndex": 0}),
                ("messageStop", {"stopReason": "end_turn"}),
                (
                    "metadata",
                    {
                        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                        "metrics": {"latencyMs": 120},
                    },
                ),
            ]
            for name, payload in events:
                # Bedrock pads each event with a field of random length ("p").
                padded = {**payload, "p": "abcdefghij"[: 1 + len(name) % 9]}
                self._chunk(aws_event(name, padded))
            self._chunk(b"")

        def _gemini(self, body: dict[str, Any], request_id: str, *, stream: bool) -> None:
            parts = body.get("contents", [{}])[-1].get("parts", [{}])
            text = f"echo: {' '.join(part.get('text', '') for part in parts)}"

            def answer(piece: str, finish: str | None) -> dict[str, Any]:
                candidate: dict[str, Any] = {
                    "content": {"parts": [{"text": piece}], "role": "model"},
                    "index": 0,
                }
                if finish:
                    candidate["finishReason"] = finish
                return {
                    "candidates": [candidate],
                    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3},
                    "modelVersion": "gemini-test",
                    "responseId": request_id,
                }

            if not stream:
                self._send_json(200, answer(text, "STOP"), request_id)
                return
            words = text.split(" ")
            self._send_events(
                (
                    ("", answer(word + " ", "STOP" if n == len(words) - 1 else None))
                    for n, word in enumerate(words)
                ),
                request_id,
            )

        def _openai(self, body: dict[str, Any], request_id: str) -> None:
            prompt = _last_user_text(body.get("messages", []))
            if body.get("response_format", {}).get("type") == "json_schema":
                content = json.dumps({"answer": f"echo: {prompt}", "confidence": 0.5})
            else:
                content = f"echo: {prompt}"
            completion_id = f"chatcmpl-{request_id}"
            minted = _minted() if server.volatile else {"created": 1_700_000_000}
            if server.volatile:
                completion_id = f"chatcmpl-{secrets.token_hex(12)}"
            if body.get("stream"):
                self._send_events(
                    _openai_chunks(completion_id, body["model"], content, minted),
                    request_id,
                    done=True,
                )
                return
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    **minted,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content, "refusal": None},
                            "logprobs": None,
                            # A provider's own reason, which openai's model does not list.
                            "finish_reason": "eos" if "[eos]" in prompt else "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": len(prompt.split()),
                        "completion_tokens": 3,
                        "total_tokens": len(prompt.split()) + 3,
                    },
                },
                request_id,
            )

        def _anthropic(self, body: dict[str, Any], request_id: str) -> None:
            text = f"echo: {_last_user_text(body.get('messages', []))}"
            message = {
                "id": f"msg_{secrets.token_hex(12) if server.volatile else request_id}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 3},
            }
            if body.get("stream"):
                self._send_events(_anthropic_events(message), request_id, named=True)
                return
            self._send_json(200, message, request_id)

        def _send_encoded(self, body: dict[str, Any], request_id: str, encoding: str) -> None:
            data = ENCODERS[encoding](json.dumps({"echo": body}).encode())
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", encoding)
            self.send_header("content-length", str(len(data)))
            self.send_header("set-cookie", "session=secret-cookie-value")
            self._request_id_headers(request_id)
            self.end_headers()
            self.wfile.write(data)

        def _send_json(
            self, status: int, payload: dict[str, Any], request_id: str, *, amazon: bool = False
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if amazon:
                self.send_header("x-amzn-requestid", request_id)
            else:
                self._request_id_headers(request_id)
            self.end_headers()
            self.wfile.write(data)

        def _send_events(
            self,
            events: Iterator[tuple[str, dict[str, Any]]],
            request_id: str,
            *,
            done: bool = False,
            named: bool = False,
        ) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self._request_id_headers(request_id)
            self.end_headers()
            for name, payload in events:
                prefix = f"event: {name}\n" if named else ""
                self._chunk(f"{prefix}data: {json.dumps(payload)}\n\n".encode())
            if done:
                self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            if server.gap and data:
                time.sleep(server.gap * (random.uniform(0.5, 1.5) if server.volatile else 1))
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _request_id_headers(self, request_id: str) -> None:
            self.send_header("x-request-id", request_id)  # openai
            self.send_header("request-id", request_id)  # anthropic
            if server.volatile:
                self.send_header("cf-ray", f"{secrets.token_hex(8)}-AMS")
                self.send_header("openai-processing-ms", str(random.randint(200, 900)))
                self.send_header("x-ratelimit-remaining-tokens", str(random.randint(1, 10**6)))

    return Handler


#: Routes that answer with the request body echoed, in that content encoding.
ENCODERS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content)
            return str(content)
    return ""


def _bedrock_text(body: dict[str, Any]) -> str:
    message = body.get("messages", [{}])[-1]
    return " ".join(part.get("text", "") for part in message.get("content", []))


def _minted() -> dict[str, Any]:
    """What OpenAI mints per call beside the id."""
    return {"created": int(time.time()), "system_fingerprint": f"fp_{secrets.token_hex(5)}"}


def _openai_chunks(
    completion_id: str, model: str, content: str, minted: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        event = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            **minted,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if "system_fingerprint" in minted:  # streamed answers carry random padding too
            event["obfuscation"] = secrets.token_hex(random.randint(1, 8))
        return event

    yield "", chunk({"role": "assistant", "content": ""})
    for word in content.split(" "):
        yield "", chunk({"content": word + " "})
    yield "", chunk({}, "stop")


def _anthropic_events(message: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    text = message["content"][0]["text"]
    yield (
        "message_start",
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
    )
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for word in text.split(" "):
        yield (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": word + " "},
            },
        )
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def suite_project(pytester: Any, monkeypatch: Any, live: Path, module: str, suite: str) -> None:
    """A pytester project that runs ``suite`` as ``module``.py against this server, the
    way tests/test_sdks.py and tests/test_http_recording.py do: asyncio in auto mode, the
    store in recordings/, what the live run saw kept in ``live`` ($LIVE_DIR), and no
    API key, recording switch or CI flag inherited from the outer run."""
    pytester.makepyfile(**{module: suite})
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "castore_root = recordings\n"
    )
    live.mkdir()
    monkeypatch.setenv("LIVE_DIR", str(live))
    for name in ("RECORD_FIXTURES", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CI"):
        monkeypatch.delenv(name, raising=False)


if __name__ == "__main__":
    running = LLMServer().start()
    print(running.base_url, flush=True)
    threading.Event().wait()
