"""A suite leaves VCR.py behind: its cassettes become ``castore_http`` recordings
(``castore.integrations.http.cassettes``), and the same tests, marked ``castore_http``
instead of ``vcr``, replay them with no cassette and no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUIET, cli

from castore import Store
from tests.llm_server import LLMServer

SUITE = """
import os

import httpx
import openai
import pytest

pytestmark = pytest.mark.vcr
BASE_URL = os.environ["LLM_BASE_URL"]


def client():
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key="sk-in-a-header", max_retries=0)


def test_a_completion_asked_twice():
    answers = [
        client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "twice"}]
        ).choices[0].message.content
        for _ in range(2)
    ]
    assert answers == ["echo: twice", "echo: twice"]


def test_a_stream():
    with client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a stream"}], stream=True
    ) as stream:
        chunks = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert "".join(chunks) == "echo: a stream "
    assert len(chunks) == 5  # one per server-sent event, as live


def test_a_gzip_body_and_a_secret_query():
    response = httpx.post(BASE_URL + "/gzip?key=secret-query-key", json={"a": 1})
    assert response.json() == {"echo": {"a": 1}}
"""


@pytest.mark.usefixtures("clients_imported")
def test_vcr_cassettes_become_castore_http_recordings_that_replay_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "test_chat.py").write_text(SUITE)
    pytester.makeini("[pytest]\ncastore_root = recordings\n")
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        recorded = pytester.runpytest_inprocess(
            "--record-mode=once", "-p", "no:cacheprovider", *QUIET
        )
    finally:
        server.stop()
    recorded.assert_outcomes(passed=3)
    cassettes = sorted((tests / "cassettes" / "test_chat").glob("*.yaml"))
    assert len(cassettes) == 3

    store = Store(pytester.path / "recordings")
    imported = cli(
        *("--root", "recordings", "import", "--vcr-cassettes", "--as-http"),
        *("--remove-cassettes", "--json", "tests"),
        cwd=pytester.path,
        check=True,
    )
    report = json.loads(imported.stdout)
    assert {item["namespace"] for item in report["cassettes"]} == {"tests/test_chat"}
    assert report["recordings"] == server.requests == 4
    assert not any(cassette.exists() for cassette in cassettes)

    (tests / "test_chat.py").write_text(
        SUITE.replace("pytestmark = pytest.mark.vcr", "pytestmark = pytest.mark.castore_http")
    )
    replayed = pytester.runpytest_inprocess("-p", "no:cacheprovider", *QUIET)
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["4 replayed, 0 missing or stale, 0 recorded*"])
    assert (
        b"secret-query-key"
        not in Path(store.root / "index" / "tests" / "test_chat.json").read_bytes()
    )
