"""The README's main job: the example suite replays from the committed fixtures/ store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from castore import Store

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_example_suite_replays_from_fixtures_without_calling_the_slow_api() -> None:
    environment = {
        key: value for key, value in os.environ.items() if key not in {"RECORD_FIXTURES", "CI"}
    }
    environment["FAKE_LLM_LATENCY"] = "not a number: any call to the fake API would crash"
    # The README's main job is `uv run pytest examples`; this is the same run.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "examples", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    store = Store(REPO_ROOT / "fixtures")
    entries = sum(len(store.entries(namespace)) for namespace in store.namespaces())
    assert f"{entries} replayed, 0 missing or stale, 0 recorded" in result.stdout
    assert "of real calls avoided" in result.stdout
