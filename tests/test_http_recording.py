"""HTTP-level recording (``castore.integrations.http``): the real openai and anthropic
SDKs (httpx2) and plain httpx, recorded against a loopback server that answers after a
delay, then replayed with the server stopped, in real pytest sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from tests.llm_server import LLMServer

#: The suite conftest.py's ``suite`` fixture runs: http_suite.py, as test_http.py.
SUITE = (Path(__file__).parent / "http_suite.py").read_text()
SUITE_MODULE = "test_http"
TESTS = 11
SECRETS = ("sk-proj-0123456789abcdefTHISISSECRET", "sk-ant-api03-SECRETSECRETSECRET")


def test_sdk_calls_record_then_replay_without_wrapping(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LLMServer(delay=0.5).start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("LLM_DELAY", "0.5")
    with monkeypatch.context() as recording:
        recording.setenv("RECORD_FIXTURES", "true")
        recording.setenv("OPENAI_API_KEY", SECRETS[0])
        recording.setenv("ANTHROPIC_API_KEY", SECRETS[1])
        try:
            recorded = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
        finally:
            server.stop()
    recorded.assert_outcomes(passed=TESTS)
    calls = server.requests
    # 1 + 3 repeats + 1 + 1 + 2 (parse, raw) + 1 anthropic + 1 gzip + 3 encoded + 1 paced
    assert calls == 14

    replayed = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=TESTS)
    replayed.stdout.fnmatch_lines(["14 replayed, 0 missing or stale, 0 recorded*"])
    assert server.requests == calls

    # No secret reached the store: keys, the cookie, the query's key.
    stored = b"".join(
        path.read_bytes() for path in (pytester.path / "recordings").rglob("*") if path.is_file()
    )
    plain = stored + b"".join(
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
        for path in (pytester.path / "recordings" / "blobs").rglob("*.zst")
    )
    for secret in (*SECRETS, "secret-cookie-value", "secret-query-key"):
        assert secret.encode() not in plain, secret


def test_a_missing_recording_names_the_request_and_the_nearest_one(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        pytester.runpytest_subprocess("-k", "chat_completion", "-p", "no:cacheprovider")
    finally:
        server.stop()
    monkeypatch.delenv("RECORD_FIXTURES")
    changed = SUITE.replace('"content": "hello"}]', '"content": "hullo"}]')
    pytester.makepyfile(test_http=changed)
    result = pytester.runpytest_subprocess("-k", "chat_completion", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MissingRecordingError: no recording for key 'POST 127.0.0.1/v1/chat/completions-*",
            "*nearest recorded keys*",
            '*(body.messages[[]0[]].content: "hello" → "hullo")',
        ]
    )


XDIST_SUITE = """
import os

import openai
import pytest

pytestmark = pytest.mark.castore_http


@pytest.mark.parametrize("n", range(8))
def test_same_question(n):
    client = openai.OpenAI(base_url=os.environ["LLM_BASE_URL"] + "/v1", api_key="k", max_retries=0)
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "shared question"}]
    )
    assert reply.choices[0].message.content == "echo: shared question"
"""


def test_under_xdist_each_request_is_recorded_once(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_http=XDIST_SUITE)
    server = LLMServer(delay=0.5).start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    finally:
        server.stop()
    result.assert_outcomes(passed=8)
    assert server.requests == 1


REDACT_SUITE = """
import os
import re

import httpx
import pytest


def scrub(body):
    return re.sub(rb"tok-[A-Za-z0-9]+", b"tok-REDACTED", body)


@pytest.mark.castore_http(redact_body=scrub)
def test_secret_in_bodies():
    response = httpx.post(os.environ["LLM_BASE_URL"] + "/gzip", json={"token": "tok-Sup3rSecret"})
    assert response.json()["echo"]["token"].startswith("tok-")
"""


def test_redact_body_runs_over_request_and_response_bodies(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_http=REDACT_SUITE)
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    finally:
        server.stop()
    monkeypatch.delenv("RECORD_FIXTURES")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    root = pytester.path / "recordings"
    index = b"".join(path.read_bytes() for path in (root / "index").rglob("*.json"))
    blobs = b"".join(
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
        for path in (root / "blobs").rglob("*.zst")
    )
    assert b"Sup3rSecret" not in index + blobs
    assert b"tok-REDACTED" in index and b"tok-REDACTED" in blobs
