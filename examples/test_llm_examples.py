"""castore's example suite: slow LLM calls recorded once in fixtures/, replayed ever after.

Replay (the README's main job):   uv run pytest examples
Re-record everything:            RECORD_FIXTURES=true uv run pytest examples
"""

from __future__ import annotations

import fake_llm
import pytest
from fake_llm import IntermediateRepresentation

from castore import request_key

PROMPTS = {
    "find_index": "Write a function to find the index of an element in a list",
    "factorial": "Write a recursive factorial function",
}


def test_sync_completion(recorder):
    prompt = PROMPTS["find_index"]
    response = recorder.get_or_record_sync(
        "test_find_index_sync",
        lambda: fake_llm.complete(prompt),
        metadata={"test": "sync completion", "prompt": prompt},
    )
    assert "def find_index" in response["choices"][0]["message"]["content"]


async def test_async_completion(recorder):
    prompt = PROMPTS["factorial"]
    response = await recorder.get_or_record(
        "test_factorial_async",
        lambda: fake_llm.acomplete(prompt),
        metadata={"test": "async completion", "prompt": prompt},
    )
    assert "def factorial" in response["choices"][0]["message"]["content"]


def test_streaming_completion(recorder):
    chunks = recorder.get_or_record_sync(
        "test_find_index_stream", lambda: fake_llm.stream(PROMPTS["find_index"])
    )
    text = "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks)
    assert text.startswith("def find_index")


async def test_async_streaming_completion(recorder):
    chunks = await recorder.get_or_record(
        "test_factorial_astream", lambda: fake_llm.astream(PROMPTS["factorial"])
    )
    text = "".join([chunk["choices"][0]["delta"]["content"] async for chunk in chunks])
    assert text.startswith("def factorial")


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_key_derived_from_the_request(recorder, name):
    request = {"model": fake_llm.MODEL, "messages": [{"role": "user", "content": PROMPTS[name]}]}
    response = recorder.get_or_record_sync(
        request_key(**request, api_key="sk-never-part-of-the-key"),
        lambda: fake_llm.complete(PROMPTS[name]),
    )
    assert response["model"] == fake_llm.MODEL


async def test_typed_result_with_a_custom_recorder(ir_recorder):
    async def translate() -> IntermediateRepresentation:
        response = await fake_llm.acomplete(PROMPTS["find_index"])
        return IntermediateRepresentation(
            function_name="find_index",
            parameters=["xs", "x"],
            returns=response["choices"][0]["message"]["content"].split(":")[0],
        )

    ir = await ir_recorder.get_or_record("test_find_index", translate)
    assert isinstance(ir, IntermediateRepresentation)
    assert ir.function_name == "find_index"
