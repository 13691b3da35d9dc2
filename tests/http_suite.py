"""The suite tests/test_http_recording.py runs in real pytest sessions (copied in as
``test_http.py``): SDK calls written as the READMEs write them, with no castore call in
sight. The module's ``castore_http`` marker answers every request from the store.

While recording, each test writes what it saw to ``$LIVE_DIR``; on replay (server
stopped) it must see exactly that.
"""

import json
import os
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel

pytestmark = pytest.mark.castore_http

BASE_URL = os.environ["LLM_BASE_URL"]
LIVE = Path(os.environ["LIVE_DIR"])
RECORDING = os.environ.get("RECORD_FIXTURES") == "true"
# Real-looking keys while recording; replay needs none (the test scans the store for them).
OPENAI_KEY = os.environ.get("OPENAI_API_KEY", "replay-needs-no-key")
ANTHROPIC_KEY = os.environ.get("ANTHROPIC_API_KEY", "replay-needs-no-key")


class Answer(BaseModel):
    answer: str
    confidence: float


def same_as_live(name, seen):
    path = LIVE / f"{name}.json"
    if RECORDING:
        path.write_text(json.dumps(seen))
    else:
        assert seen == json.loads(path.read_text())


def openai_client():
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0)


def test_chat_completion():
    completion = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], temperature=0
    )
    assert completion.choices[0].message.content == "echo: hello"
    same_as_live("chat", [completion.model_dump(exclude_unset=True), completion._request_id])


def test_repeated_requests_replay_in_recorded_order():
    client = openai_client()
    ids = [
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}]
        )._request_id
        for _ in range(3)
    ]
    assert len(set(ids)) == 3
    same_as_live("repeats", ids)


def test_stream_with_form():
    with openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count"}], stream=True
    ) as stream:
        chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo: count "
    same_as_live("stream", chunks)


async def test_async_stream():
    async with openai.AsyncOpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "async"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "echo: async "


def test_parse_and_raw_response():
    client = openai_client()
    parsed = client.chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}], response_format=Answer
    )
    assert parsed.choices[0].message.parsed == Answer(answer="echo: q", confidence=0.5)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "raw"}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    same_as_live("raw", [raw.parse().choices[0].message.content, raw.headers["x-request-id"]])


def test_anthropic_message_stream_helpers():
    client = anthropic.Anthropic(base_url=BASE_URL, api_key=ANTHROPIC_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hi "
    same_as_live("anthropic", [text, final.content[0].text, final.usage.output_tokens])


def test_plain_httpx_with_a_custom_transport_and_a_gzip_body():
    with httpx.Client(transport=httpx.HTTPTransport(retries=1)) as client:
        response = client.post(BASE_URL + "/gzip?key=secret-query-key", json={"b": 1, "a": 0.0})
    assert response.json() == {"echo": {"a": 0.0, "b": 1}}
    assert "set-cookie" not in response.headers
    same_as_live("gzip", [response.status_code, response.json()])


@pytest.mark.parametrize("encoding", ["zstd", "deflate", "br"])
def test_encoded_bodies(encoding):
    with httpx.Client() as client:
        response = client.post(f"{BASE_URL}/{encoding}", json={"z": [1, 2]})
    assert response.json() == {"echo": {"z": [1, 2]}}
    assert "content-encoding" not in response.headers  # stored decoded, replayed plain
    same_as_live(encoding, response.json())


@pytest.mark.castore_http(match_on=["method", "url"], pace=1.0)
def test_match_on_and_pacing():
    """Only method and URL count, so the other prompt replays this answer; the stream
    replays at its recorded pace (the server waited before its first chunk)."""
    prompt = "recorded prompt" if RECORDING else "a prompt never recorded"
    started = time.perf_counter()
    with openai_client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "echo: recorded prompt "
    assert time.perf_counter() - started >= float(os.environ.get("LLM_DELAY", "0")) * 0.8
