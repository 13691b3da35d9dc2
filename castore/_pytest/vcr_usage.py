"""VCR.py's interactions in castore's report, with ``castore_vcr = true``.

pytest-recording's ``vcr`` fixture holds the test's cassette. Its count of interactions
read from the file is noted when the test starts; when the call ends, the interactions it
played are counted as replays and the ones appended since as recordings, in the same
session report as castore's own (``N replayed, … recorded``). Cassette namespaces are not
judged for unused recordings: VCR.py decides which interactions a cassette keeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from castore._pytest.usage import Usage


class CassetteUsage:
    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        cassette = getattr(item, "funcargs", {}).get("vcr")
        loaded = len(getattr(cassette, "data", ())) if cassette is not None else 0
        try:
            return (yield)
        finally:
            if cassette is not None and hasattr(cassette, "play_count"):
                self._count(cassette, loaded)

    def _count(self, cassette: Any, loaded: int) -> None:
        self.usage.hits += int(cassette.play_count)
        self.usage.recorded += max(len(cassette.data) - loaded, 0)
