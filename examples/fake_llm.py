"""A deliberately slow stand-in for an LLM API, so the example suite has something to record.

Each call sleeps (``FAKE_LLM_LATENCY`` seconds, 1.5 by default) the way a real model call
takes 30-60 s, then builds a response shaped like OpenAI's chat completions. Replaying
the suite never calls it: that is the point of the example.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

MODEL = "fake-gpt-4o"


@dataclasses.dataclass
class IntermediateRepresentation:
    """A typed result, like the seeds' IR objects: replayed as this class, not a dict."""

    function_name: str
    parameters: list[str]
    returns: str


def _latency() -> float:
    return float(os.environ.get("FAKE_LLM_LATENCY", "1.5"))


def _answer(prompt: str) -> str:
    if "index" in prompt:
        return "def find_index(xs, x):\n    return xs.index(x) if x in xs else -1"
    if "factorial" in prompt:
        return "def factorial(n):\n    return 1 if n <= 1 else n * factorial(n - 1)"
    return f"Here is a careful answer to: {prompt}"


def _completion(prompt: str, content: str) -> dict[str, Any]:
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    return {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split())},
    }


def complete(prompt: str) -> dict[str, Any]:
    """A blocking chat completion."""
    time.sleep(_latency())
    return _completion(prompt, _answer(prompt))


async def acomplete(prompt: str) -> dict[str, Any]:
    """An async chat completion."""
    await asyncio.sleep(_latency())
    return _completion(prompt, _answer(prompt))


def stream(prompt: str) -> Iterator[dict[str, Any]]:
    """A streamed completion: chunks with a ``delta``, as server-sent events deliver them."""
    time.sleep(_latency())
    for word in _answer(prompt).split(" "):
        yield {"object": "chat.completion.chunk", "choices": [{"delta": {"content": word + " "}}]}


async def astream(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """An async streamed completion."""
    await asyncio.sleep(_latency())
    for word in _answer(prompt).split(" "):
        await asyncio.sleep(0)
        yield {"object": "chat.completion.chunk", "choices": [{"delta": {"content": word + " "}}]}
