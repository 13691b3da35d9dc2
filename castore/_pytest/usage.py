"""What a test run used: the lookups behind the report and the judgement of unused entries.

:class:`Usage` is collected by each process; xdist workers send theirs to the controller
as JSON, where they are merged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from castore._recording.tally import Tally

if TYPE_CHECKING:
    from castore._recording.staleness import Miss


class Usage(Tally):
    """Lookups of one process (or, once merged, of a whole session): the counts of a
    :class:`Tally`, as each recorder keeps its own, and what the report and the judgement
    of unused recordings need besides."""

    __slots__ = (
        "ci_ignored",
        "deselected",
        "error_answers",
        "fetch_problems",
        "fetched",
        "missing",
        "recorded_keys",
        "refused",
        "tests",
        "unrecorded_hosts",
        "used",
    )

    def __init__(
        self,
        *,
        recorded_keys: list[tuple[str, str, float]] | None = None,
        used: dict[str, set[str]] | None = None,
        tests: dict[str, set[str]] | None = None,
        missing: list[tuple[str, str, Miss, str]] | None = None,
        deselected: set[str] | None = None,
        fetched: list[tuple[int, int, float, str]] | None = None,
        fetch_problems: list[str] | None = None,
        unrecorded_hosts: dict[str, int] | None = None,
        refused: list[str] | None = None,
        error_answers: list[str] | None = None,
        ci_ignored: int = 0,
        **counts: Any,
    ) -> None:
        super().__init__(**counts)
        self.recorded_keys = recorded_keys or []
        """(namespace, key, seconds) of each recording, in order."""
        self.used = used or {}
        """namespace -> stored keys replayed or recorded."""
        self.tests = tests or {}
        """namespace -> node ids of the tests that looked keys up in it."""
        self.missing = missing or []
        """(namespace, key, kind of miss, why) of lookups that failed in replay-only mode."""
        self.deselected = deselected or set()
        """Node ids deselected on this process (-k, -m, --lf…): their modules were not run
        whole."""
        self.fetched = fetched or []
        """(objects, bytes, seconds, source) of each lazy fetch this process made; the
        source is ``LFS`` or ``remote NAME``."""
        self.fetch_problems = fetch_problems or []
        self.unrecorded_hosts = unrecorded_hosts or {}
        """``host:port`` -> connections a recording session made outside castore."""
        self.refused = refused or []
        """Connections the network guard refused: ``host:port (where)``."""
        self.error_answers = error_answers or []
        """HTTP error answers (4xx, 5xx) recorded: ``404 POST host/path``."""
        self.ci_ignored = ci_ignored
        """Recorders whose marker asked for a recording mode that CI turned off."""

    def note(self, namespace: str, key: str, nodeid: str | None) -> None:
        self.used.setdefault(namespace, set()).add(key)
        self.tests.setdefault(namespace, set())
        if nodeid:
            self.tests[namespace].add(nodeid)

    def merge(self, other: Usage) -> None:
        self.add(other)
        self.recorded_keys.extend(other.recorded_keys)
        for namespace, keys in other.used.items():
            self.used.setdefault(namespace, set()).update(keys)
        for namespace, nodeids in other.tests.items():
            self.tests.setdefault(namespace, set()).update(nodeids)
        self.missing.extend(other.missing)
        self.deselected.update(other.deselected)
        self.fetched.extend(other.fetched)
        self.fetch_problems.extend(other.fetch_problems)
        for target, count in other.unrecorded_hosts.items():
            self.unrecorded_hosts[target] = self.unrecorded_hosts.get(target, 0) + count
        self.refused.extend(other.refused)
        self.error_answers.extend(other.error_answers)
        self.ci_ignored += other.ci_ignored

    def to_json(self) -> str:
        return json.dumps(
            {
                "hits": self.hits,
                "misses": self.misses,
                "recorded": self.recorded,
                "unchanged": self.unchanged,
                "recorded_seconds": self.recorded_seconds,
                "recorded_keys": self.recorded_keys,
                "saved_seconds": self.saved_seconds,
                "used": {ns: sorted(keys) for ns, keys in self.used.items()},
                "tests": {ns: sorted(ids) for ns, ids in self.tests.items()},
                "missing": self.missing,
                "deselected": sorted(self.deselected),
                "fetched": self.fetched,
                "fetch_problems": self.fetch_problems,
                "unrecorded_hosts": self.unrecorded_hosts,
                "refused": self.refused,
                "error_answers": self.error_answers,
                "ci_ignored": self.ci_ignored,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Usage:
        from castore._recording.staleness import Miss  # noqa: PLC0415 - xdist's controller only

        data = json.loads(text)
        return cls(
            hits=data["hits"],
            misses=data["misses"],
            recorded=data["recorded"],
            unchanged=data.get("unchanged", 0),
            recorded_seconds=data.get("recorded_seconds", 0.0),
            recorded_keys=[tuple(item) for item in data.get("recorded_keys", [])],
            saved_seconds=data["saved_seconds"],
            used={ns: set(keys) for ns, keys in data["used"].items()},
            tests={ns: set(ids) for ns, ids in data["tests"].items()},
            missing=[(ns, key, Miss(miss), why) for ns, key, miss, why in data["missing"]],
            deselected=set(data["deselected"]),
            fetched=[
                (objects, size, seconds, source)
                for objects, size, seconds, source in data["fetched"]
            ],
            fetch_problems=list(data["fetch_problems"]),
            unrecorded_hosts=dict(data.get("unrecorded_hosts", {})),
            refused=list(data.get("refused", [])),
            error_answers=list(data.get("error_answers", [])),
            ci_ignored=data.get("ci_ignored", 0),
        )
