"""Whether a recording can be replayed as it is, and if not, why.

A pure judgement over an index entry and the recorder's settings: the recorder decides
what to do with the answer (record, fail, warn), and the session counts it for the report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from castore._recording.modes import Mode
from castore._storage.index import Entry
from castore._storage.public_names import present_as_public


class Miss(StrEnum):
    """Why a key cannot be replayed as it is."""

    MISSING = "missing"
    """No recording."""
    RERECORDING = "rerecording"
    """Mode ``all``: every key is recorded anew."""
    SCHEMA = "schema"
    """Recorded under another schema version than the recorder declares."""
    EXPIRED = "expired"
    """Older than the recorder's max_age."""
    UNREADABLE = "unreadable"
    """The stored value no longer fits the recorder's type or deserializer."""
    REQUEST = "request"
    """The call's ``request=`` differs from the one the recording was made for."""


@dataclass(frozen=True, slots=True)
class Problem:
    miss: Miss
    reason: str
    message: str = ""
    """The whole message of the error the caller got, once one was raised for it."""

    @property
    def fixed_by(self) -> Mode:
        """The mode whose run records this key anew."""
        narrow = (Miss.MISSING, Miss.UNREADABLE, Miss.REQUEST)
        return Mode.NEW_EPISODES if self.miss in narrow else Mode.ALL


MISSING = Problem(Miss.MISSING, "missing")

#: The metadata field that holds a recording's request fingerprint (``request=``).
FINGERPRINT_FIELD: Final = "request_fingerprint"
#: The metadata fields that hold a recording's request summary start so
#: (``request_keys.request_summary``).
SUMMARY_PREFIX: Final = "request."
#: Changed request fields a stale recording's message names; values cut to SHORT.
MAX_SHOWN: Final = 5
SHORT: Final = 50


def problem_with(
    entry: Entry | None,
    *,
    mode: Mode,
    fresh_since: dt.datetime,
    schema_version: str | int | None,
    max_age: dt.timedelta | None,
    now: dt.datetime,
    fingerprint: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Problem | None:
    """Why ``entry`` cannot be replayed as it is, or None if it can. ``fingerprint`` is
    the call's request fingerprint (``request=``), compared with the recorded one;
    ``metadata``, the call's, holds its request's summary, which names what changed."""
    if entry is None:
        return MISSING
    if mode is Mode.ALL and entry.recorded_at < fresh_since:
        return Problem(Miss.RERECORDING, "re-recording everything")
    if schema_version is not None and entry.schema != schema_version:
        return Problem(
            Miss.SCHEMA,
            f"it was recorded with schema version {entry.schema!r}, and the recorder "
            f"now declares {schema_version!r}",
        )
    if max_age is not None:
        age = now - entry.recorded_at
        if age > max_age:
            reason = f"it was recorded {age_text(age)} ago, more than max_age {age_text(max_age)}"
            return Problem(Miss.EXPIRED, reason)
    recorded = entry.metadata.get(FINGERPRINT_FIELD)
    if fingerprint is not None and isinstance(recorded, dict) and recorded != fingerprint:
        summarised = any(name.startswith(SUMMARY_PREFIX) for name in entry.metadata)
        details = (  # a recording from before summaries were kept names parts only
            changed_fields(entry.metadata, metadata or {}, prefix=SUMMARY_PREFIX)
            if summarised
            else []
        )
        if details:
            shown = "; ".join(details[:MAX_SHOWN])
            more = f" (and {len(details) - MAX_SHOWN} more)" if len(details) > MAX_SHOWN else ""
            return Problem(
                Miss.REQUEST, f"the request changed since it was recorded: {shown}{more}"
            )
        changed = sorted(
            name
            for name in set(recorded) | set(fingerprint)
            if recorded.get(name) != fingerprint.get(name)
        )
        return Problem(
            Miss.REQUEST,
            f"the request changed since it was recorded (in {', '.join(changed)})",
        )
    return None


def changed_fields(
    recorded: Mapping[str, Any], now: Mapping[str, Any], *, prefix: str = ""
) -> list[str]:
    """``name: recorded → now`` for each field that differs (those starting with
    ``prefix``, the request fingerprint left out: its digests name nothing)."""
    lines = []
    for name in sorted(set(recorded) | set(now)):
        if not name.startswith(prefix) or name == FINGERPRINT_FIELD:
            continue
        before, after = recorded.get(name), now.get(name)
        if before != after:
            lines.append(f"{name}: {short_json(before)} → {short_json(after)}")
    return lines


def short_json(value: Any) -> str:
    """A value as a message shows it: JSON, cut short; ``absent`` for a missing field."""
    text = "absent" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def age_text(age: dt.timedelta) -> str:
    if age >= dt.timedelta(days=2):
        return f"{age.days} days"
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{age.total_seconds():.0f} s"


present_as_public(Miss, Problem)
