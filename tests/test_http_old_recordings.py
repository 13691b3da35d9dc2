"""Recordings that ``castore_http`` made before its answers were kept per client and
before volatile parts were known (castore at 69cda14, ``tests/data/``) keep replaying, and
re-recording them against answers that differ only in volatile parts keeps their blobs:
the on-disk format promise, tested with a store the old code wrote. The first re-recording
adds the metadata slots castore_http keeps today (the test and its call number, which
``castore diff`` pairs requests by) to each index entry; from then on it is quiet.

The store was recorded by 69cda14's ``castore_http`` from ``test_quiet_rerecording``'s
suite (openai and anthropic, JSON and streams) against 69cda14's ``tests/llm_server.py``,
whose request ids ran ``req_000001``… in order of arrival.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.llm_server import LLMServer
from tests.test_quiet_rerecording import SUITE, store_files

OLD_STORE = Path(__file__).parent / "data" / "http-recordings-69cda14"
RECORDED_IDS = {"openai_json": "req_000001", "anthropic_json": "req_000003"}


@pytest.mark.usefixtures("clients_imported")
def test_an_old_castore_http_store_replays_and_re_records_quietly(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(OLD_STORE, pytester.path / "recordings")
    pytester.makeini(
        "[pytest]\ncastore_root = recordings\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_llm=SUITE)
    seen = tmp_path / "seen.json"
    monkeypatch.setenv("SEEN_FILE", str(seen))
    monkeypatch.delenv("RECORD_FIXTURES", raising=False)
    before = store_files(pytester.path)

    offline = LLMServer()  # started, stopped: its port refuses every connection
    monkeypatch.setenv("LLM_BASE_URL", offline.start().base_url)
    offline.stop()
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=4)
    replayed.stdout.fnmatch_lines(["4 replayed, 0 missing or stale, 0 recorded*"])
    assert json.loads(seen.read_text()) == RECORDED_IDS
    assert store_files(pytester.path) == before

    monkeypatch.delenv("CI")
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    server = LLMServer(volatile=True).start()
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    try:
        upgraded = pytester.runpytest_inprocess("-p", "no:cacheprovider")
        upgraded.assert_outcomes(passed=4)
        after = store_files(pytester.path)
        again = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        server.stop()
    assert server.requests == 8
    blobs = {name: data for name, data in before.items() if name.startswith("blobs/")}
    assert {name: data for name, data in after.items() if name.startswith("blobs/")} == blobs
    old_entries = json.loads(before["index/test_llm.json"])["entries"]
    new_entries = json.loads(after["index/test_llm.json"])["entries"]
    assert new_entries.keys() == old_entries.keys()
    for key, entry in new_entries.items():
        assert entry["blob"] == old_entries[key]["blob"]
        assert entry["metadata"] == {
            **old_entries[key]["metadata"],
            "test": entry["metadata"]["test"],
            "call": 1,
        }
    again.assert_outcomes(passed=4)
    again.stdout.fnmatch_lines(["*(4 unchanged but for volatile parts, kept as they were)*"])
    assert store_files(pytester.path) == after
