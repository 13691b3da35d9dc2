"""Whether a recording can be replayed as it is, and if not, why.

A pure judgement over an index entry and the recorder's settings: the recorder decides
what to do with the answer (record, fail, warn), and the session counts it for the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from castore._recording.modes import Mode
from castore._storage.index import Entry


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


def problem_with(
    entry: Entry | None,
    *,
    mode: Mode,
    fresh_since: dt.datetime,
    schema_version: str | int | None,
    max_age: dt.timedelta | None,
    now: dt.datetime,
    fingerprint: Mapping[str, str] | None = None,
) -> Problem | None:
    """Why ``entry`` cannot be replayed as it is, or None if it can. ``fingerprint`` is
    the call's request fingerprint (``request=``), compared with the recorded one."""
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


def age_text(age: dt.timedelta) -> str:
    if age >= dt.timedelta(days=2):
        return f"{age.days} days"
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{age.total_seconds():.0f} s"
