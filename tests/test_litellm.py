"""litellm replays offline with the recipe docs/http.md gives: its price-map host is
ignored (neither recorded nor replayed), so in replay the network guard refuses the fetch
and litellm falls back to its bundled copy, as it does on any machine without a network.

One session pays for importing litellm once: the first test records (its marker's mode),
the second replays against a port nothing listens on."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.llm_server import LLMServer, suite_project

SUITE = """
import os
import socket

import litellm
import pytest

pytestmark = pytest.mark.castore_http
MESSAGES = [{"role": "user", "content": "hello litellm"}]


def dead_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.castore(mode="all")
def test_1_records():
    reply = litellm.completion(
        model="openai/gpt-4o-mini", api_base=os.environ["LLM_BASE_URL"] + "/v1",
        api_key="sk-recording", messages=MESSAGES,
    )
    assert reply.choices[0].message.content == "echo: hello litellm"


def test_2_replays_offline():
    reply = litellm.completion(
        model="openai/gpt-4o-mini", api_base=f"http://127.0.0.1:{dead_port()}/v1",
        api_key="replay-needs-no-key", messages=MESSAGES,
    )
    assert reply.choices[0].message.content == "echo: hello litellm"
    # Its own fetch, ignored by castore, refused by the guard: litellm keeps its copy.
    prices = litellm.get_model_cost_map(url=litellm.model_cost_map_url, max_attempts=1)
    assert "gpt-4o-mini" in prices
"""

INI = """[pytest]
asyncio_default_fixture_loop_scope = function
castore_root = recordings
castore_ignore_hosts = raw.githubusercontent.com
"""


@pytest.fixture(scope="session")
def litellm_imported() -> Iterator[None]:
    """litellm, imported in this process before any pytester session, and once: it takes
    seconds, and it puts importlib_metadata's finder on ``sys.meta_path`` (disabling the
    standard library's), which pytester would take back off after a session that
    imported it, leaving no package metadata findable. Its price map is the bundled one
    here; the session's own fetch is what the test shows the guard refusing.

    Afterwards the SDK clients litellm cached are closed: their pooled connection to the
    test's server otherwise lives to the interpreter's exit, and its ResourceWarning."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        litellm = importlib.import_module("litellm")
    yield
    cache = litellm.in_memory_llm_clients_cache
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            close()
    cache.flush_cache()


@pytest.mark.usefixtures("litellm_imported")
def test_litellm_replays_offline_with_its_price_map_host_ignored(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite_project(pytester, monkeypatch, tmp_path / "live", "test_llm_via_litellm", SUITE)
    pytester.makeini(INI)
    for name in ("LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_OFFLINE_MODE"):
        monkeypatch.delenv(name, raising=False)
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        server.stop()
    result.assert_outcomes(passed=2)
    assert server.requests == 1  # recorded once, replayed with no server to reach
    result.stdout.fnmatch_lines(
        [
            "1 replayed, 0 missing or stale, 1 recorded*",
            "the network guard refused 1 connection*",
            "  raw.githubusercontent.com:443 (test *test_2_replays_offline)",
        ]
    )
