"""castore under VCR.py: pytest-recording suites whose cassettes keep their response
bodies in the castore store (``castore_vcr = true``), beside stock YAML cassettes."""

from __future__ import annotations

import json
import stat

import pytest
from conftest import QUIET, cli

from bench import corpus, suites
from castore import Store
from tests.llm_server import LLMServer

SUITE = """
import os

import httpx
import pytest

BASE_URL = os.environ["LLM_BASE_URL"]


def drop_request_id(response):
    response["headers"].pop("x-request-id", None)
    return response


@pytest.fixture(scope="module")
def vcr_config():
    return {
        "filter_headers": ["authorization"],
        "decode_compressed_response": True,
        "before_record_response": drop_request_id,
    }


def ask(prompt):
    response = httpx.post(
        BASE_URL + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": prompt}]},
        headers={"authorization": "Bearer sk-secret-in-a-header"},
    )
    return response.json()["choices"][0]["message"]["content"]


@pytest.mark.vcr
def test_{name}_one():
    assert ask("{name} one") == "echo: {name} one"


@pytest.mark.vcr
def test_{name}_twice():
    assert [ask("same"), ask("same")] == ["echo: same", "echo: same"]
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def ini(pytester: pytest.Pytester, *, castore_vcr: bool) -> None:
    pytester.makeini(
        "[pytest]\ncastore_root = recordings\n" + ("castore_vcr = true\n" if castore_vcr else "")
    )


def run(pytester: pytest.Pytester, mode: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(f"--record-mode={mode}", "-p", "no:cacheprovider", *QUIET)


@pytest.mark.usefixtures("clients_imported")
def test_cassettes_keep_bodies_in_the_store_and_replay_beside_yaml_ones(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        # A module recorded the stock way first (YAML), then castore_vcr turned on.
        project.makepyfile(test_old=SUITE.replace("{name}", "old"))
        ini(project, castore_vcr=False)
        run(project, "once").assert_outcomes(passed=2)
        project.makepyfile(test_new=SUITE.replace("{name}", "new"))
        ini(project, castore_vcr=True)
        run(project, "once").assert_outcomes(passed=4)
    finally:
        server.stop()
    recorded = server.requests
    assert recorded == 6

    cassettes = project.path / "cassettes"
    old_path = cassettes / "test_old" / "test_old_one.yaml"
    old = old_path.read_text()
    assert old.startswith("interactions:")  # stock VCR.py YAML, left as it was
    new_path = cassettes / "test_new" / "test_new_twice.yaml"
    new = json.loads(new_path.read_text())
    # Created as VCR.py creates its own cassettes (the umask's mode), not owner-only.
    assert stat.S_IMODE(new_path.stat().st_mode) == stat.S_IMODE(old_path.stat().st_mode)
    assert new["castore_cassette"] == 1
    assert new["namespace"] == "vcr/cassettes/test_new/test_new_twice"
    assert [item["body"] for item in new["interactions"]] == [
        "0001 POST 127.0.0.1/v1/chat/completions",
        "0002 POST 127.0.0.1/v1/chat/completions",
    ]
    assert "sk-secret-in-a-header" not in json.dumps(new)  # VCR.py's filter still applied
    assert "x-request-id" not in json.dumps(new)  # and its before_record_response hook
    store = Store(project.path / "recordings")
    bodies = store.entries("vcr/cassettes/test_new/test_new_twice")
    assert sorted(bodies) == [
        "0001 POST 127.0.0.1/v1/chat/completions",
        "0001 request body",
        "0002 POST 127.0.0.1/v1/chat/completions",
        "0002 request body",
    ]
    # The two identical answers are one blob (the request ids differ: headers, not bodies).
    answer = store.get("vcr/cassettes/test_new/test_new_twice", new["interactions"][0]["body"])
    assert json.loads(answer)["choices"][0]["message"]["content"] == "echo: same"

    replayed = run(project, "none")  # server stopped: everything from cassettes
    replayed.assert_outcomes(passed=4)
    assert server.requests == recorded


RULES_SUITE = """
import os

import httpx
import pytest


@pytest.mark.vcr
def test_cookies_keys_and_headers():
    response = httpx.post(
        os.environ["LLM_BASE_URL"] + "/gzip?key=secret-query-key&kept=1",
        json={"a": 1},
        headers={"authorization": "Bearer sk-secret-in-a-header", "x-api-key": "sk-other"},
    )
    assert response.json() == {"echo": {"a": 1}}
"""


@pytest.mark.usefixtures("clients_imported")
def test_castore_rules_hold_under_vcr(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With castore_vcr: RECORD_FIXTURES sets VCR.py's record mode, castore_http's secret
    defaults keep cookies, keys and credentials out of cassettes, and VCR.py's
    interactions count in castore's report."""
    project.makepyfile(test_rules=RULES_SUITE)
    ini(project, castore_vcr=True)
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        monkeypatch.setenv("RECORD_FIXTURES", "true")
        recorded = project.runpytest_inprocess("-p", "no:cacheprovider", *QUIET)
        monkeypatch.delenv("RECORD_FIXTURES")
    finally:
        server.stop()
    recorded.assert_outcomes(passed=1)
    assert server.requests == 1
    recorded.stdout.fnmatch_lines(["0 replayed, 0 missing or stale, 1 recorded*"])
    cassette = project.path / "cassettes" / "test_rules" / "test_cookies_keys_and_headers.yaml"
    text = cassette.read_text()
    for secret in ("sk-secret-in-a-header", "sk-other", "secret-query-key", "secret-cookie"):
        assert secret not in text, secret
    assert "kept=1" in text
    replayed = project.runpytest_inprocess("-p", "no:cacheprovider", *QUIET)
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["1 replayed, 0 missing or stale, 0 recorded*"])


@pytest.mark.usefixtures("clients_imported")
def test_a_body_missing_from_the_store_is_a_clear_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LLMServer().start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        project.makepyfile(test_new=SUITE.replace("{name}", "new"))
        ini(project, castore_vcr=True)
        run(project, "once").assert_outcomes(passed=2)
    finally:
        server.stop()
    Store(project.path / "recordings").delete(
        "vcr/cassettes/test_new/test_new_one", "0001 POST 127.0.0.1/v1/chat/completions"
    )
    result = run(project, "none")
    result.stdout.fnmatch_lines(["*cassette *test_new_one.yaml*re-record it*"])


CORPUS_SIZE = 60


@pytest.mark.skipif(
    not (corpus.corpus_root() / "crewai").is_dir(), reason="the shared corpus is not here"
)
@pytest.mark.usefixtures("clients_imported")
def test_a_corpus_suite_passes_with_yaml_and_with_castore_vcr(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 pytest-recording tests over real crewAI cassettes: stock YAML, then migrated
    with `castore import --vcr-cassettes` and replayed with castore_vcr = true.

    The suite is the benchmark's (bench/suites.py, its pytest.ini and conftest), run by
    pytester in this process, which has VCR.py and the clients imported already: a pytest
    in a subprocess would import them again for each of the two runs."""
    cassettes = corpus.load(limit=CORPUS_SIZE)
    built = suites.Suites(
        pytester.path, cassettes, [suites.module_name(n) for n in range(len(cassettes))]
    )
    suites.write_vcr(built)
    folder = built.suite("vcr")
    monkeypatch.chdir(folder)  # its pytest.ini, as `pytest` run there finds it
    pytester.runpytest_inprocess(*QUIET).assert_outcomes(passed=CORPUS_SIZE)
    yaml_bytes = sum(path.stat().st_size for path in built.fixtures("vcr").rglob("*.yaml"))

    store_root = folder / "recordings"
    migrate = cli(
        "--root", str(store_root), "import", "--vcr-cassettes", str(built.fixtures("vcr")),
        cwd=folder,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    assert f"migrated {CORPUS_SIZE} of {CORPUS_SIZE} cassette file(s)" in migrate.stdout
    ini = (folder / "pytest.ini").read_text().replace("-p no:castore", "")  # castore on
    (folder / "pytest.ini").write_text(ini + "castore_root = recordings\ncastore_vcr = true\n")
    replayed = pytester.runpytest_inprocess(*QUIET)
    replayed.assert_outcomes(passed=CORPUS_SIZE)
    replayed.stdout.fnmatch_lines(["* replayed, 0 missing or stale, 0 recorded*"])

    index_bytes = sum(path.stat().st_size for path in built.fixtures("vcr").rglob("*.yaml"))
    store_bytes = sum(path.stat().st_size for path in store_root.rglob("*") if path.is_file())
    assert all(
        json.loads(path.read_text())["castore_cassette"] == 1
        for path in built.fixtures("vcr").rglob("*.yaml")
    )
    # Footprint, printed for the record (-s): cassette indexes plus the store, vs YAML.
    print(f"YAML {yaml_bytes:,} B; castore indexes {index_bytes:,} B + store {store_bytes:,} B")
    assert index_bytes + store_bytes < yaml_bytes
