"""HTTP-level recording (``castore.integrations.http``): every client castore records, the
real SDKs among them (openai and anthropic over httpx2, google-genai's async client over
aiohttp, boto3's bedrock-runtime over urllib3) and plain httpx, requests, aiohttp and
urllib3, against a loopback server, in real pytest sessions under ``-W error``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import zstandard

from castore import Store
from tests.llm_server import LLMServer, suite_project

SUITE = (Path(__file__).parent / "http_suite.py").read_text()
TESTS = 22
SECRETS = (
    "sk-proj-0123456789abcdefTHISISSECRET",
    "sk-ant-api03-SECRETSECRETSECRET",
    "aws-secret-THISISSECRET0123456789",
    "AIzaSyGEMINISECRET0123456789",
)
#: google-genai subclasses aiohttp's ClientSession, which aiohttp warns about: not ours.
WARNINGS = ("-W", "error", "-W", "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@pytest.fixture
def suite(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    suite_project(pytester, monkeypatch, tmp_path / "live", "test_http", SUITE)
    for name in ("AWS_SECRET_ACCESS_KEY", "GEMINI_API_KEY", "PHASE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "live"


@pytest.mark.usefixtures("clients_imported")
def test_every_client_records_then_replays_offline_and_with_the_server_up(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live without castore, recording, replay with the server stopped and with it up:
    what each test sees (texts, chunk, line and event boundaries) is the same in all four
    runs, the replays give back the recorded ids, and no replay reaches the server."""
    server = LLMServer(gap=0.01).start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    ini = (pytester.path / "tox.ini").read_text()
    try:
        with monkeypatch.context() as live:
            live.setenv("PHASE", "live")
            pytester.makeini(  # castore is not loaded: its marker and options are unknown
                ini.replace("castore_root = recordings", "markers = castore_http")
            )
            pytester.runpytest_inprocess(*WARNINGS, "-p", "no:castore").assert_outcomes(
                passed=TESTS
            )
            pytester.makeini(ini)
        before = server.requests
        with monkeypatch.context() as recording:
            recording.setenv("RECORD_FIXTURES", "true")
            recording.setenv("OPENAI_API_KEY", SECRETS[0])
            recording.setenv("ANTHROPIC_API_KEY", SECRETS[1])
            recording.setenv("AWS_SECRET_ACCESS_KEY", SECRETS[2])
            recording.setenv("GEMINI_API_KEY", SECRETS[3])
            recorded = pytester.runpytest_inprocess(*WARNINGS)
        recorded.assert_outcomes(passed=TESTS)
        recorded.stdout.fnmatch_lines(
            ["recorded 1 error answer (*", "  404 POST 127.0.0.1/v1/embeddings"]
        )
        calls = server.requests - before
        # One recording per request sent: no client recorded another's request twice.
        assert len(Store(pytester.path / "recordings").entries("test_http")) == calls

        up = pytester.runpytest_inprocess(*WARNINGS)
        up.assert_outcomes(passed=TESTS)
        up.stdout.fnmatch_lines([f"{calls} replayed, 0 missing or stale, 0 recorded*"])
        assert server.requests == before + calls  # the server was up, and got nothing

        # In CI, every client's changed request fails with castore's message (the nearest
        # recording named), a swallowed miss too, and nothing reaches the server.
        with monkeypatch.context() as changed:
            changed.setenv("CI", "true")
            changed.setenv("REQUEST_SUFFIX", " changed")
            # Python's own tracebacks: pytest's would parse every SDK frame's source file
            # (about 10 s for these 20 failures); the messages are the same.
            failing = pytester.runpytest_inprocess(*WARNINGS, "--tb=native")
        assert server.requests == before + calls
    finally:
        server.stop()
    stopped = pytester.runpytest_inprocess(*WARNINGS)
    stopped.assert_outcomes(passed=TESTS)

    failing.assert_outcomes(passed=1, failed=TESTS - 1)  # match_on ignores the prompt
    for test, section in failure_sections(failing.stdout.str()).items():
        assert "no recording for key" in section, test
        assert "nearest recorded keys in this namespace:" in section, test
    failing.stdout.fnmatch_lines(
        [
            "*castore could not replay a recording this test asked for; the code under test "
            "caught the error*",
        ]
    )
    failing.stdout.fnmatch_lines(["*RetriedMissError: the client retried POST 127.0.0.1/*"])
    failing.stdout.fnmatch_lines(
        [
            "*MissingRecordingError: no recording for key 'POST 127.0.0.1/v1/chat/completions-*",
            "*nearest recorded keys*",
            '*(body.messages[[]0[]].content: "hello" → "hello changed"*',
        ]
    )

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


def failure_sections(output: str) -> dict[str, str]:
    """pytest's report of each failed test, by test name."""
    failures = output.split("= FAILURES =", 1)[1].split("short test summary info", 1)[0]
    parts = re.split(r"\n_{3,} (\S+) _{3,}\n", failures)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


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
        result = pytester.runpytest_inprocess("-n", "2", "-p", "no:cacheprovider")
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


@pytest.mark.usefixtures("clients_imported")
def test_redact_body_runs_over_request_and_response_bodies(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_http=REDACT_SUITE)
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    try:
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    finally:
        server.stop()
    monkeypatch.delenv("RECORD_FIXTURES")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    root = pytester.path / "recordings"
    index = b"".join(path.read_bytes() for path in (root / "index").rglob("*.json"))
    blobs = b"".join(
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
        for path in (root / "blobs").rglob("*.zst")
    )
    assert b"Sup3rSecret" not in index + blobs
    assert b"tok-REDACTED" in index and b"tok-REDACTED" in blobs
