"""What a test run used, and what it concluded was unused: the data behind the report and prune.

:class:`Usage` is collected by each process (xdist workers send theirs to the controller
as JSON). The controller judges which entries no test asked for and saves the judgement
in the store's local state as ``last-run.json``, merged with earlier runs' judgements,
where ``castore prune`` reads it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from castore._atomic import ensure_private_directory, write_atomic
from castore._index import format_time
from castore.errors import IndexFormatError, UnsupportedFormatError

USAGE_FORMAT: Final = 1
LAST_RUN_NAME: Final = "last-run.json"


@dataclass
class Usage:
    """Lookups of one process (or, once merged, of a whole session)."""

    hits: int = 0
    misses: int = 0
    recorded: int = 0
    saved_seconds: float = 0.0
    used: dict[str, set[str]] = field(default_factory=dict)
    """namespace -> stored keys replayed or recorded."""
    tests: dict[str, set[str]] = field(default_factory=dict)
    """namespace -> node ids of the tests that looked keys up in it."""
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    """(namespace, key, why) of lookups that failed in replay-only mode."""
    deselected: set[str] = field(default_factory=set)
    """Node ids deselected on this process (-k, -m, --lf…): their modules were not run whole."""

    def note(self, namespace: str, key: str, nodeid: str | None) -> None:
        self.used.setdefault(namespace, set()).add(key)
        self.tests.setdefault(namespace, set())
        if nodeid:
            self.tests[namespace].add(nodeid)

    def merge(self, other: Usage) -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.recorded += other.recorded
        self.saved_seconds += other.saved_seconds
        for namespace, keys in other.used.items():
            self.used.setdefault(namespace, set()).update(keys)
        for namespace, nodeids in other.tests.items():
            self.tests.setdefault(namespace, set()).update(nodeids)
        self.missing.extend(other.missing)
        self.deselected.update(other.deselected)

    def to_json(self) -> str:
        return json.dumps(
            {
                "hits": self.hits,
                "misses": self.misses,
                "recorded": self.recorded,
                "saved_seconds": self.saved_seconds,
                "used": {ns: sorted(keys) for ns, keys in self.used.items()},
                "tests": {ns: sorted(ids) for ns, ids in self.tests.items()},
                "missing": self.missing,
                "deselected": sorted(self.deselected),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Usage:
        data = json.loads(text)
        return cls(
            hits=data["hits"],
            misses=data["misses"],
            recorded=data["recorded"],
            saved_seconds=data["saved_seconds"],
            used={ns: set(keys) for ns, keys in data["used"].items()},
            tests={ns: set(ids) for ns, ids in data["tests"].items()},
            missing=[(ns, key, why) for ns, key, why in data["missing"]],
            deselected=set(data["deselected"]),
        )


@dataclass(frozen=True)
class Judgement:
    """One run's verdict on one namespace: these keys existed and no test asked for them."""

    judged_at: dt.datetime
    """Start of the judging run: entries recorded later are never pruned on its word."""
    unused: frozenset[str]


def last_run_path(state_dir: Path) -> Path:
    return state_dir / LAST_RUN_NAME


def load_judgements(state_dir: Path) -> dict[str, Judgement]:
    path = last_run_path(state_dir)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexFormatError(path, f"not valid JSON ({error})") from None
    version = document.get("castore_usage") if isinstance(document, dict) else None
    if not isinstance(version, int):
        raise IndexFormatError(path, "not a castore usage file (no 'castore_usage' field)")
    if version > USAGE_FORMAT:
        raise UnsupportedFormatError(path, version, USAGE_FORMAT)
    try:
        return {
            namespace: Judgement(
                dt.datetime.fromisoformat(item["judged_at"]), frozenset(item["unused"])
            )
            for namespace, item in document["namespaces"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise IndexFormatError(path, f"bad 'namespaces' ({error!r})") from None


def save_judgements(
    state_dir: Path,
    judged: Mapping[str, Judgement],
    used: Mapping[str, set[str]],
) -> dict[str, Judgement]:
    """Merge this run into ``last-run.json``: namespaces judged now replace their old
    verdict; older verdicts lose every key this run used. Returns what was saved."""
    merged: dict[str, Judgement] = {}
    for namespace, old in load_judgements(state_dir).items():
        still_unused = old.unused - used.get(namespace, set())
        if still_unused:
            merged[namespace] = Judgement(old.judged_at, frozenset(still_unused))
    for namespace, judgement in judged.items():
        if judgement.unused:
            merged[namespace] = judgement
        else:
            merged.pop(namespace, None)
    document: dict[str, Any] = {
        "castore_usage": USAGE_FORMAT,
        "namespaces": {
            namespace: {
                "judged_at": format_time(merged[namespace].judged_at),
                "unused": sorted(merged[namespace].unused),
            }
            for namespace in sorted(merged)
        },
    }
    ensure_private_directory(state_dir)
    write_atomic(last_run_path(state_dir), (json.dumps(document, indent=2) + "\n").encode())
    return merged
