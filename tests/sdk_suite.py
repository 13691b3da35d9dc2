"""The SDK suite that tests/test_sdks.py runs in real pytest sessions (copied in as
``test_llm.py``; this module's name keeps the outer session from collecting it).

Calls are written as the openai and anthropic READMEs write them, wrapped in
``get_or_record``. While recording, a test keeps the live object the SDK returned and
writes what a user would compare to ``$LIVE_DIR``; on replay it compares with that.
"""

import json
import os
from pathlib import Path

import anthropic
import openai
from openai.types.chat import ChatCompletion, ParsedChatCompletion
from pydantic import BaseModel

BASE_URL = os.environ["LLM_BASE_URL"]
LIVE = Path(os.environ["LIVE_DIR"])
RECORDING = os.environ.get("RECORD_FIXTURES") == "true"


class Answer(BaseModel):
    answer: str
    confidence: float


def openai_client():
    # In replay no key is needed: the client is built, but never sends anything.
    return openai.OpenAI(
        base_url=BASE_URL + "/v1", api_key=os.environ.get("OPENAI_API_KEY", "unused")
    )


def anthropic_client():
    return anthropic.Anthropic(base_url=BASE_URL, api_key="unused", max_retries=0)


def kept(name, live_objects, replayed):
    """Record: compare with the live object and keep its views. Replay: compare with those.

    (serialize_as_any: a live parse() result warns on a plain model_dump by itself.)
    """
    view = {
        "dump": replayed.model_dump(exclude_unset=True, serialize_as_any=True),
        "json": replayed.model_dump_json(exclude_unset=True, serialize_as_any=True),
        "request_id": replayed._request_id,
        "type": type(replayed).__name__.split("[")[0],
    }
    if RECORDING:
        live = live_objects[0]
        assert view == {
            "dump": live.model_dump(exclude_unset=True, serialize_as_any=True),
            "json": live.model_dump_json(exclude_unset=True, serialize_as_any=True),
            "request_id": live._request_id,
            "type": type(live).__name__.split("[")[0],
        }
        (LIVE / f"{name}.json").write_text(json.dumps(view))
    else:
        assert view == json.loads((LIVE / f"{name}.json").read_text())
    assert view["request_id"].startswith("req_")


def live_call(live_objects, call):
    def generator():
        live_objects.append(call())
        return live_objects[-1]

    return generator


def test_untyped_chat_completion(recorder):
    client, live = openai_client(), []
    completion = recorder.get_or_record_sync(
        "hello",
        live_call(
            live,
            lambda: client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hello there"}],
                temperature=0,
            ),
        ),
    )
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "echo: hello there"
    kept("hello", live, completion)


def test_typed_per_call(recorder):
    client, live = openai_client(), []
    completion = recorder.get_or_record_sync(
        "typed",
        live_call(
            live,
            lambda: client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "typed"}],
            ),
        ),
        type=ChatCompletion,
    )
    kept("typed", live, completion)


def test_an_answer_the_sdk_accepts_without_validation(recorder):
    client = openai_client()
    completion = recorder.get_or_record_sync(
        "eos",
        lambda: client.chat.completions.create(
            model="local-model",
            messages=[{"role": "user", "content": "[eos] please"}],
        ),
    )
    assert completion.choices[0].finish_reason == "eos"


def test_parse_structured_output(recorder):
    client, live = openai_client(), []
    parsed = recorder.get_or_record_sync(
        "parse",
        live_call(
            live,
            lambda: client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "capital?"}],
                response_format=Answer,
            ),
        ),
    )
    assert isinstance(parsed, ParsedChatCompletion)
    answer = parsed.choices[0].message.parsed
    assert isinstance(answer, Answer) and answer.answer == "echo: capital?"
    kept("parse", live, parsed)


def test_with_form_stream(recorder):
    client = openai_client()
    with recorder.get_or_record_sync(
        "stream",
        lambda: client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "count to three"}],
            stream=True,
        ),
    ) as stream:
        chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "echo: count to three "
    assert len(chunks) == 6 and chunks[-1].choices[0].finish_reason == "stop"


async def test_async_with_form_stream(recorder):
    async with openai.AsyncOpenAI(base_url=BASE_URL + "/v1", api_key="unused") as client:
        stream = await recorder.get_or_record(
            "async-stream",
            lambda: client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "async please"}],
                stream=True,
            ),
        )
        async with stream as events:
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in events])
    assert text == "echo: async please "


def test_anthropic_message(recorder):
    client, live = anthropic_client(), []
    message = recorder.get_or_record_sync(
        "message",
        live_call(
            live,
            lambda: client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "bonjour"}],
            ),
        ),
    )
    assert isinstance(message, anthropic.types.Message)
    assert message.content[0].text == "echo: bonjour"
    kept("message", live, message)


def test_anthropic_stream_manager(recorder):
    client = anthropic_client()
    with recorder.get_or_record_sync(
        "message-stream",
        lambda: client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "stream me"}],
        ),
    ) as stream:
        events = list(stream)
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"
    deltas = [event.delta.text for event in events if event.type == "content_block_delta"]
    assert "".join(deltas) == "echo: stream me "


def test_request_fingerprint(recorder):
    client = openai_client()
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": os.environ.get("PROMPT", "first prompt")}],
    }
    completion = recorder.get_or_record_sync(
        "fixed-key",
        lambda: client.chat.completions.create(**request),
        request=request,
    )
    assert completion.choices[0].message.content.startswith("echo: ")
