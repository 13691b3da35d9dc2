"""The calls ``bench.clients`` makes: real prompts and real answers from the corpus.

Each route kind gets a few recorded interactions (a seeded sample): the request's JSON as
the API received it, and the answer as the service sent it.

* ``chat``: OpenAI chat completions answered with JSON;
* ``chat-stream``: the same route answered with server-sent events (``stream: true``),
  one HTTP chunk per event;
* ``converse``: Bedrock's ``converse``, JSON;
* ``converse-stream``: Bedrock's ``converse-stream``. The corpus holds none, so the
  answers of the ``converse`` sample are sent as the service streams them: an AWS event
  stream (messageStart, a contentBlockDelta per few words, contentBlockStop,
  messageStop, metadata), one HTTP chunk per event.

``synthetic`` makes answers of the same shapes without the corpus, for the test that runs
the benchmark end to end from a fresh checkout.
"""

from __future__ import annotations

import binascii
import json
import random
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from bench import corpus
from bench.answer_server import FRAMING_HEADERS, Answer, Answers, prompt_key

KINDS = ("chat", "chat-stream", "converse", "converse-stream")
#: Bedrock content blocks that are plain JSON (images and documents carry bytes).
_JSON_BLOCKS = frozenset({"text", "toolUse", "toolResult"})


@dataclass
class Call:
    """One request a client makes, and the answer the server gives it."""

    kind: str
    model: str
    body: dict[str, Any]
    """The request's JSON (for Bedrock, the operation's parameters, without modelId)."""
    answer: Answer

    @property
    def raw(self) -> bytes:
        """The body as the plain HTTP clients send it."""
        return json.dumps(self.body).encode()


def from_corpus(count: int, seed: int = 11) -> dict[str, list[Call]]:
    """``count`` calls of each kind, sampled from the corpus (distinct prompts)."""
    found: dict[str, list[Call]] = {kind: [] for kind in KINDS}
    for cassette in corpus.load():
        for item in cassette.interactions:
            call = _corpus_call(item.request, item.response)
            if call is not None:
                found[call.kind].append(call)
    rng = random.Random(seed)
    chosen = {kind: _sample(calls, count, rng) for kind, calls in found.items() if calls}
    chosen["converse-stream"] = [_streamed(call) for call in chosen["converse"]]
    return chosen


def _sample(calls: list[Call], count: int, rng: random.Random) -> list[Call]:
    distinct = list({prompt_key(call.body): call for call in calls}.values())
    return rng.sample(distinct, min(count, len(distinct)))


def _corpus_call(request: dict[str, Any], response: dict[str, Any]) -> Call | None:
    if response["status"]["code"] != 200 or request["method"] != "POST":
        return None
    url = urlsplit(request["uri"])
    content_type = _first(response.get("headers", {}), "content-type")
    try:
        body = json.loads(_text(request.get("body")))
        text = _text(response.get("body", {}).get("string"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    headers = [
        (name, value)
        for name, values in response.get("headers", {}).items()
        for value in values
        if name.lower() not in FRAMING_HEADERS
    ]
    answer = Answer(200, response["status"].get("message") or "OK", headers, [text.encode()])
    if url.hostname == "api.openai.com" and url.path == "/v1/chat/completions":
        if content_type.startswith("application/json") and not body.get("stream"):
            return Call("chat", body["model"], body, answer)
        if content_type.startswith("text/event-stream") and body.get("stream"):
            answer.chunks = [event.encode() + b"\n\n" for event in text.split("\n\n") if event]
            return Call("chat-stream", body["model"], body, answer)
        return None
    if (url.hostname or "").startswith("bedrock-runtime.") and url.path.endswith("/converse"):
        blocks = [block for message in body["messages"] for block in message["content"]]
        blocks += json.loads(text)["output"]["message"]["content"]
        if not {name for block in blocks for name in block} <= _JSON_BLOCKS:
            return None
        model = unquote(url.path.split("/")[2])
        return Call("converse", model, body, answer)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if not isinstance(value, str):
        raise ValueError("no body")  # noqa: TRY004 - the callers skip an unreadable body
    return value


def _first(headers: dict[str, list[str]], name: str) -> str:
    for key, values in headers.items():
        if key.lower() == name:
            return values[0].lower()
    return ""


# --- Bedrock's converse answer, streamed ---------------------------------------------------


def _streamed(call: Call) -> Call:
    """A ``converse`` call asked of ``converse-stream``: the same answer, as the events
    Bedrock streams it in."""
    answer = json.loads(call.answer.body)
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(answer["output"]["message"]["content"]):
        if "toolUse" in block:
            tool = block["toolUse"]
            start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            arguments = {"toolUse": {"input": json.dumps(tool["input"])}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": arguments}))
        else:
            words = block["text"].split(" ")
            for at in range(0, len(words), 3):  # a few words an event, as Bedrock sends
                piece = " ".join(words[at : at + 3]) + (" " if at + 3 < len(words) else "")
                delta = {"text": piece}
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": answer["stopReason"]}))
    events.append(("metadata", {"usage": answer["usage"], "metrics": answer["metrics"]}))
    headers = [
        (name, value) for name, value in call.answer.headers if name.lower() != "content-type"
    ]
    headers.append(("Content-Type", "application/vnd.amazon.eventstream"))
    chunks = [aws_event(name, payload) for name, payload in events]
    return Call("converse-stream", call.model, call.body, Answer(200, "OK", headers, chunks))


def aws_event(name: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message (prelude and CRC32s as botocore's parser checks them)."""
    headers = b""
    for key, value in (
        (":event-type", name),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        encoded = value.encode()
        headers += bytes([len(key)]) + key.encode() + b"\x07"
        headers += struct.pack(">H", len(encoded)) + encoded
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(data) + 4, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + data
    return message + struct.pack(">I", binascii.crc32(message))


# --- without the corpus ----------------------------------------------------------------------


def synthetic(count: int) -> dict[str, list[Call]]:
    """Calls of every kind with made-up answers of the real shapes (no corpus needed)."""
    chat, stream, converse = [], [], []
    for number in range(count):
        prompt = f"Question {number}: what does a content-addressed store keep?"
        reply = f"Answer {number}: the value, named by its digest. " * 8
        messages = [{"role": "user", "content": prompt}]
        headers: list[tuple[str, str]] = [
            ("Content-Type", "application/json"),
            ("x-request-id", f"req_{number}"),
        ]
        completion = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1_750_000_000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 80, "total_tokens": 92},
        }
        body = {"model": "gpt-4o-mini", "messages": messages}
        answer = Answer(200, "OK", headers, [json.dumps(completion).encode()])
        chat.append(Call("chat", "gpt-4o-mini", body, answer))
        events = [
            {
                **completion,
                "object": "chat.completion.chunk",
                "choices": [{"delta": {"content": w}}],
            }
            for w in reply.split(" ")[:20]
        ]
        chunks = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
        chunks.append(b"data: [DONE]\n\n")
        sse = [("Content-Type", "text/event-stream"), ("x-request-id", f"req_{number}")]
        streamed = Answer(200, "OK", sse, chunks)
        stream.append(Call("chat-stream", "gpt-4o-mini", {**body, "stream": True}, streamed))
        bedrock_messages = [{"role": "user", "content": [{"text": prompt}]}]
        output = {
            "output": {"message": {"role": "assistant", "content": [{"text": reply}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 80, "totalTokens": 92},
            "metrics": {"latencyMs": 900},
        }
        amazon = [("Content-Type", "application/json"), ("x-amzn-RequestId", f"req_{number}")]
        converse.append(
            Call(
                "converse",
                "us.anthropic.claude-sonnet-4-6",
                {"messages": bedrock_messages, "inferenceConfig": {"maxTokens": 200}},
                Answer(200, "OK", amazon, [json.dumps(output).encode()]),
            )
        )
    return {
        "chat": chat,
        "chat-stream": stream,
        "converse": converse,
        "converse-stream": [_streamed(call) for call in converse],
    }


def answers_of(calls: dict[str, list[Call]]) -> Answers:
    """What the server answers: each kind's answers by prompt."""
    return {
        kind: {prompt_key(call.body): call.answer for call in kind_calls}
        for kind, kind_calls in calls.items()
    }
