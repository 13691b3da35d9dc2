"""The README's main job: the example suite replays from the committed fixtures/ store."""

from __future__ import annotations

from pathlib import Path

import pytest

from castore import Store

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_example_suite_replays_from_fixtures_without_calling_the_slow_api(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_LLM_LATENCY", "not a number: any call to the fake API would crash")
    # The README's main job is `uv run pytest examples`; this is the same run, with the
    # project's configuration (pyproject.toml: -n auto, so xdist's workers are real
    # processes), its controller in this process rather than in a fresh interpreter.
    monkeypatch.chdir(REPO_ROOT)
    result = pytester.runpytest_inprocess("examples", "-p", "no:cacheprovider")

    output = result.stdout.str()
    assert result.ret == 0, output + result.stderr.str()
    store = Store(REPO_ROOT / "fixtures")
    entries = sum(len(store.entries(namespace)) for namespace in store.namespaces())
    assert f"{entries} replayed, 0 missing or stale, 0 recorded" in output
    assert "of real calls avoided" in output
