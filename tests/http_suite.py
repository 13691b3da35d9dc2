"""The suite tests/test_http_recording.py runs in real pytest sessions (copied in as
``test_http.py``): calls written as each client's README writes them, with no castore call
in sight. The module's ``castore_http`` marker answers every request from the store.

The outer test runs this suite four times: live with castore not loaded (``PHASE=live``),
recording, replaying with the server stopped, replaying with it up. Each test hands
:func:`seen` what it observed: ``shape``, which must be the same in all four runs (texts,
and the boundaries of chunks, lines and events as the client delivered them), and
``ids``, minted by the server per call, which the replays must give back as recorded.
"""

import json
import os
import time
from pathlib import Path

import aiohttp
import anthropic
import boto3
import httpx
import openai
import pytest
import requests
import urllib3
from aiobotocore.session import get_session
from google import genai
from google.genai import types as genai_types
from pydantic import BaseModel

pytestmark = pytest.mark.castore_http

BASE_URL = os.environ["LLM_BASE_URL"]
LIVE = Path(os.environ["LIVE_DIR"])
PHASE = os.environ.get("PHASE") or ("record" if os.environ.get("RECORD_FIXTURES") else "replay")
# Real-looking keys while recording; replay needs none (the test scans the store for them).
OPENAI_KEY = os.environ.get("OPENAI_API_KEY", "replay-needs-no-key")
ANTHROPIC_KEY = os.environ.get("ANTHROPIC_API_KEY", "replay-needs-no-key")
AWS_SECRET = os.environ.get("AWS_SECRET_ACCESS_KEY", "replay-needs-no-key")
GEMINI_KEY = os.environ.get("GEMINI_API_KEY", "replay-needs-no-key")
CHAT = BASE_URL + "/v1/chat/completions"
#: Added to every request: a changed request for every client, when the outer test sets it.
SUFFIX = os.environ.get("REQUEST_SUFFIX", "")


class Answer(BaseModel):
    answer: str
    confidence: float


def seen(name, shape, ids=None):
    """Live: keep the shape. Record: the shape is live's; keep the ids. Replay: both."""
    shape = json.loads(json.dumps(shape))
    shape_file, ids_file = LIVE / f"{name}.json", LIVE / f"{name}.ids.json"
    if PHASE == "live":
        shape_file.write_text(json.dumps(shape))
        return
    assert shape == json.loads(shape_file.read_text())
    if PHASE == "record":
        ids_file.write_text(json.dumps(ids))
    else:
        assert ids == json.loads(ids_file.read_text())


def openai_client(**options):
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0, **options)


def bedrock():
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=BASE_URL,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE",
        aws_secret_access_key=AWS_SECRET,
    )


def test_chat_completion():
    completion = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello" + SUFFIX}], temperature=0
    )
    assert completion.choices[0].message.content == "echo: hello"
    seen("chat", completion.choices[0].model_dump(), [completion.id, completion._request_id])


def test_repeated_requests_replay_in_recorded_order():
    client = openai_client()
    ids = [
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "again" + SUFFIX}]
        )._request_id
        for _ in range(3)
    ]
    assert len(set(ids)) == 3
    seen("repeats", len(ids), ids)


def test_stream_with_form():
    with openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count" + SUFFIX}], stream=True
    ) as stream:
        chunks = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo: count "
    seen("stream", [c["choices"] for c in chunks], [c["id"] for c in chunks])


async def test_async_stream():
    async with openai.AsyncOpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "async" + SUFFIX}],
            stream=True,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "echo: async "


async def test_openai_over_its_aiohttp_client_is_one_recording():
    """openai's aiohttp client is an httpx2 client over aiohttp: the outer client records,
    the inner one passes through (the outer test counts recordings against calls)."""
    async with openai.AsyncOpenAI(
        base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, http_client=openai.DefaultAioHttpClient()
    ) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "over aiohttp" + SUFFIX}]
        )
    seen("openai_aiohttp", completion.choices[0].message.content, completion._request_id)


def test_parse_and_raw_response():
    client = openai_client()
    parsed = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "q" + SUFFIX}],
        response_format=Answer,
    )
    assert parsed.choices[0].message.parsed == Answer(answer="echo: q", confidence=0.5)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "raw" + SUFFIX}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    seen("raw", raw.parse().choices[0].message.content, raw.headers["x-request-id"])


def test_anthropic_message_stream_helpers():
    client = anthropic.Anthropic(base_url=BASE_URL, api_key=ANTHROPIC_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi" + SUFFIX}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hi "
    seen("anthropic", [text, final.content[0].text, final.usage.output_tokens], final.id)


def test_bedrock_converse():
    reply = bedrock().converse(
        modelId="anthropic.claude-3-haiku",
        messages=[{"role": "user", "content": [{"text": "hello bedrock" + SUFFIX}]}],
    )
    assert reply["output"]["message"]["content"][0]["text"] == "echo: hello bedrock"
    seen("bedrock", [reply["output"], reply["usage"]], reply["ResponseMetadata"]["RequestId"])


def test_bedrock_converse_stream_keeps_its_events():
    reply = bedrock().converse_stream(
        modelId="anthropic.claude-3-haiku",
        messages=[{"role": "user", "content": [{"text": "stream please" + SUFFIX}]}],
    )
    events = list(reply["stream"])
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert "".join(deltas) == "echo: stream please "
    seen("bedrock_stream", events, reply["ResponseMetadata"]["RequestId"])


async def test_aiobotocore_converse_stream_over_aiohttp():
    session = get_session()
    async with session.create_client(
        "bedrock-runtime",
        endpoint_url=BASE_URL,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE",
        aws_secret_access_key=AWS_SECRET,
    ) as client:
        reply = await client.converse_stream(
            modelId="anthropic.claude-3-haiku",
            messages=[{"role": "user", "content": [{"text": "aio stream" + SUFFIX}]}],
        )
        events = [event async for event in reply["stream"]]
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert "".join(deltas) == "echo: aio stream "
    seen("aiobotocore", events, reply["ResponseMetadata"]["RequestId"])


async def test_gemini_async_client_over_aiohttp():
    client = genai.Client(
        api_key=GEMINI_KEY, http_options=genai_types.HttpOptions(base_url=BASE_URL)
    )
    assert client._api_client._use_aiohttp()  # aiohttp is installed: its async transport
    reply = await client.aio.models.generate_content(
        model="gemini-test", contents="hi gemini" + SUFFIX
    )
    pieces = [
        chunk.text
        async for chunk in await client.aio.models.generate_content_stream(
            model="gemini-test", contents="stream gemini" + SUFFIX
        )
    ]
    assert reply.text == "echo: hi gemini"
    seen("gemini", [reply.text, pieces], reply.response_id)


def test_requests_plain_and_streamed():
    headers = {"authorization": f"Bearer {OPENAI_KEY}"}
    plain = requests.post(
        CHAT,
        json={"model": "m", "messages": [{"role": "user", "content": "req" + SUFFIX}]},
        headers=headers,
    )
    body = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "lines" + SUFFIX}],
    }
    with requests.post(CHAT, json=body, headers=headers, stream=True) as streamed:
        lines = [line.decode() for line in streamed.iter_lines() if line]
    body["messages"][0]["content"] = "pieces" + SUFFIX
    with requests.post(CHAT, json=body, headers=headers, stream=True) as streamed:
        pieces = [len(piece) for piece in streamed.iter_content(chunk_size=None)]
    assert plain.json()["choices"][0]["message"]["content"] == "echo: req"
    seen(
        "requests",
        [plain.json()["choices"], [json.loads(line[6:])["choices"] for line in lines[:-1]], pieces],
        plain.headers["x-request-id"],
    )


async def test_aiohttp_server_sent_events_read_by_line_and_by_chunk():
    body = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "sse by line" + SUFFIX}],
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(CHAT, json=body) as response:
            lines = []
            while line := await response.content.readline():
                lines.append(line.decode())
        body["messages"][0]["content"] = "sse by chunk" + SUFFIX
        async with session.post(CHAT, json=body) as response:
            chunks = [
                (len(data), end)
                async for data, end in response.content.iter_chunks()
                if data  # aiohttp may or may not mark the end of the last chunk on its own
            ]
            request_id = response.headers["x-request-id"]
        async with session.post(CHAT, json=body) as response:
            pieces = [len(piece) async for piece in response.content.iter_any()]
        async with session.post(CHAT, json=body) as response:
            sized = [len(piece) async for piece in response.content.iter_chunked(100)]
    # What one read gets live depends on what has arrived, so only replays are compared
    # read by read; the HTTP chunks (iter_chunks) and the lines are the same in every run.
    assert lines[-2:] == ["data: [DONE]\n", "\n"]
    assert sum(pieces) == sum(sized) == sum(size for size, _ in chunks)
    assert max(sized) <= 100
    if PHASE != "live":
        assert pieces == [size for size, _ in chunks]
    seen("aiohttp", [[_without_id(line) for line in lines], chunks], request_id)


def _without_id(line):
    """A server-sent event's line with the completion id (minted per call) left out."""
    if not line.startswith("data: {"):
        return line
    event = json.loads(line[len("data: ") :])
    event.pop("id")
    return event


def test_urllib3_pool_manager():
    http = urllib3.PoolManager()
    reply = http.request(
        "POST",
        BASE_URL + "/v1/messages",
        json={
            "model": "m",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "u3" + SUFFIX}],
        },
    )
    streamed = http.request(
        "GET", BASE_URL + "/stream?n=3" + SUFFIX.replace(" ", "&x="), preload_content=False
    )
    pieces = [piece.decode() for piece in streamed.stream(None)]
    streamed.release_conn()
    assert reply.json()["content"][0]["text"] == "echo: u3"
    seen("urllib3", [reply.json()["content"], pieces], reply.headers["request-id"])


def test_plain_httpx_with_a_custom_transport_and_a_gzip_body():
    with httpx.Client(transport=httpx.HTTPTransport(retries=1)) as client:
        response = client.post(
            BASE_URL + "/gzip?key=secret-query-key", json={"b": 1, "a": 0.0, "s": SUFFIX}
        )
    assert response.json() == {"echo": {"a": 0.0, "b": 1, "s": ""}}
    if PHASE != "live":
        assert "set-cookie" not in response.headers
    seen("gzip", [response.status_code, response.json()], response.headers["x-request-id"])


@pytest.mark.parametrize("encoding", ["zstd", "deflate", "br"])
def test_encoded_bodies(encoding):
    with httpx.Client() as client:
        response = client.post(f"{BASE_URL}/{encoding}", json={"z": [1, 2], "s": SUFFIX})
    assert response.json() == {"echo": {"z": [1, 2], "s": ""}}
    if PHASE != "live":
        assert "content-encoding" not in response.headers  # stored decoded, replayed plain
    seen(encoding, response.json())


@pytest.mark.castore_http(match_on=["method", "url"], pace=1.0)
def test_match_on_and_pacing():
    """Only method and URL count, so the other prompt replays this answer; the stream
    replays at its recorded pace (the server waited before its first chunk)."""
    prompt = "a prompt never recorded" if PHASE == "replay" else "recorded prompt"
    started = time.perf_counter()
    delay = 0.5  # the server waits this long before it answers (the header asks it to)
    client = openai_client(default_headers={"x-test-delay": str(delay)})
    with client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "echo: recorded prompt "
    assert time.perf_counter() - started >= delay * 0.8


def test_code_that_swallows_a_miss_still_fails_on_it():
    """An SDK's error caught and ignored: a replay that misses must not pass."""
    try:  # noqa: SIM105 - written as users write it
        openai_client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "caught" + SUFFIX}]
        )
    except Exception:
        pass


def test_an_sdk_with_its_default_retries():
    """openai retries a failed request twice, backing off; castore stops a retried miss."""
    client = openai.OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "retried" + SUFFIX}]
    )
    seen("retries", completion.choices[0].message.content, completion._request_id)


def test_an_error_answer_is_recorded_and_replayed():
    response = requests.post(BASE_URL + "/v1/embeddings", json={"input": "x" + SUFFIX})
    assert response.status_code == 404
    seen("error", response.json(), response.headers["x-request-id"])
