"""The real openai and anthropic SDKs, recorded against a loopback server, then replayed
with the server stopped, in real pytest sessions.

The suite under test is written the way the SDKs' READMEs write calls. While recording,
each test keeps the live object the SDK returned and writes what a user would compare
(``model_dump(exclude_unset=True)``, ``to_json()``, ``_request_id``) to a file; the replay
session, with no server, must give back exactly that. Both sessions run under
``-W error``, so a serialization warning from ``.parse()`` results fails them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castore import Store
from tests.llm_server import LLMServer

#: The suite conftest.py's ``suite`` fixture runs: sdk_suite.py, as test_llm.py.
SUITE = (Path(__file__).parent / "sdk_suite.py").read_text()
SUITE_MODULE = "test_llm"


@pytest.mark.usefixtures("clients_imported")
def test_record_then_replay_with_the_server_stopped(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        recorded = pytester.runpytest_inprocess("-W", "error", "-p", "no:cacheprovider")
    finally:
        server.stop()
    recorded.assert_outcomes(passed=9)
    assert server.requests == 9
    assert sorted(path.stem for path in suite.iterdir()) == [
        "hello",
        "message",
        "parse",
        "typed",
    ]

    monkeypatch.delenv("RECORD_FIXTURES")
    replayed = pytester.runpytest_inprocess("-W", "error", "-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=9)
    assert server.requests == 9  # nothing reached a server (it is stopped anyway)
    replayed.stdout.fnmatch_lines(
        ["*mode none: replay only*", "9 replayed, 0 missing or stale, 0 recorded*"]
    )

    # A prompt changed under the fixed key is stale, named by the part that changed.
    monkeypatch.setenv("PROMPT", "a different prompt")
    changed = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "fingerprint")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*StaleRecordingError*request changed*messages*"])


@pytest.mark.usefixtures("clients_imported")
def test_stored_form_is_the_servers_json(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SDK model is stored as the server sent it (set fields only), with _request_id
    beside it, and a parse() result names the class of its parsed field."""
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        pytester.runpytest_inprocess("-k", "untyped or parse", "-p", "no:cacheprovider")
    finally:
        server.stop()
    store = Store(pytester.path / "recordings")
    namespace = store.namespace("test_llm")
    hello = namespace.read(namespace.entry("hello"), "hello")
    assert hello["$castore_type"] == "openai.types.chat.chat_completion:ChatCompletion"
    assert hello["private"] == {"_request_id": "req_000001"}
    assert "service_tier" not in hello["value"]  # the server never sent it
    parse = namespace.read(namespace.entry("parse"), "parse")
    assert parse["types"] == [[["choices", 0, "message", "parsed"], "test_llm:Answer"]]
    assert json.loads(parse["value"]["choices"][0]["message"]["content"])["confidence"] == 0.5
