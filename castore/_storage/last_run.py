"""``.castore/last-run.json``: which entries the last complete test runs found unused.

The pytest side judges, at the end of a run, which entries of the namespaces it could speak
for no test asked for; this file keeps those verdicts, merged across runs, in the store's
local state, where ``castore prune`` reads them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

from castore._storage.atomic import ensure_private_directory, write_atomic
from castore._storage.index import format_time
from castore._storage.json_documents import parse_document
from castore._storage.layout import LAST_RUN_NAME, MAX_LAST_RUN_BYTES, check_format_version
from castore._storage.safe_files import FileRefused, read_store_file
from castore.errors import IndexFormatError

USAGE_FORMAT: Final = 1


class Judgement(NamedTuple):
    """One run's verdict on one namespace: these keys existed and no test asked for them."""

    judged_at: dt.datetime
    """Start of the judging run: entries recorded later are never pruned on its word."""
    unused: frozenset[str]


def last_run_path(state_dir: Path) -> Path:
    return state_dir / LAST_RUN_NAME


def load_judgements(state_dir: Path) -> dict[str, Judgement]:
    return _parse_judgements(_read(state_dir), last_run_path(state_dir))


def _read(state_dir: Path) -> bytes | None:
    path = last_run_path(state_dir)
    try:
        return read_store_file(path, MAX_LAST_RUN_BYTES)
    except FileRefused as refused:
        raise IndexFormatError(path, refused.reason) from None


def _parse_judgements(raw: bytes | None, path: Path) -> dict[str, Judgement]:
    if raw is None:
        return {}
    document = parse_document(raw, path)
    check_format_version(
        document,
        "castore_usage",
        USAGE_FORMAT,
        path,
        missing="not a castore usage file (no 'castore_usage' field)",
    )
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
    verdict; older verdicts lose every key this run used. Returns what was saved. The
    file is rewritten only when that changes it: a replay of a complete suite usually
    judges as the last one did, and a durable write costs it an fsync."""
    before = _read(state_dir)
    merged: dict[str, Judgement] = {}
    for namespace, old in _parse_judgements(before, last_run_path(state_dir)).items():
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
    data = (json.dumps(document, indent=2) + "\n").encode()
    if data != before:  # a replay that judged as the last run did writes nothing
        ensure_private_directory(state_dir)
        write_atomic(last_run_path(state_dir), data)
    return merged
