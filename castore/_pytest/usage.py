"""What a test run used: the lookups behind the report and the judgement of unused entries.

:class:`Usage` is collected by each process; xdist workers send theirs to the controller
as JSON, where they are merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from castore._recording.staleness import Miss
from castore._recording.tally import Tally


@dataclass
class Usage(Tally):
    """Lookups of one process (or, once merged, of a whole session): the counts of a
    :class:`Tally`, as each recorder keeps its own, and what the report and the judgement
    of unused recordings need besides."""

    recorded_keys: list[tuple[str, str, float]] = field(default_factory=list)
    """(namespace, key, seconds) of each recording, in order."""
    used: dict[str, set[str]] = field(default_factory=dict)
    """namespace -> stored keys replayed or recorded."""
    tests: dict[str, set[str]] = field(default_factory=dict)
    """namespace -> node ids of the tests that looked keys up in it."""
    missing: list[tuple[str, str, Miss, str]] = field(default_factory=list)
    """(namespace, key, kind of miss, why) of lookups that failed in replay-only mode."""
    deselected: set[str] = field(default_factory=set)
    """Node ids deselected on this process (-k, -m, --lf…): their modules were not run whole."""
    fetched: list[tuple[int, int, float, str]] = field(default_factory=list)
    """(objects, bytes, seconds, source) of each lazy fetch this process made; the source
    is ``LFS`` or ``remote NAME``."""
    fetch_problems: list[str] = field(default_factory=list)
    unrecorded_hosts: dict[str, int] = field(default_factory=dict)
    """``host:port`` -> connections a recording session made outside castore."""
    refused: list[str] = field(default_factory=list)
    """Connections the network guard refused: ``host:port (where)``."""
    error_answers: list[str] = field(default_factory=list)
    """HTTP error answers (4xx, 5xx) recorded: ``404 POST host/path``."""
    ci_ignored: int = 0
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
