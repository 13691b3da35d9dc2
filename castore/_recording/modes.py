"""Recording modes, named as pytest-recording (VCR.py) names its record modes.

=============== ============================================ ===========================
mode            what get_or_record does                      VCR.py / seeds equivalent
=============== ============================================ ===========================
``none``        replay only; a missing key fails the test    ``none`` (the default)
``new_episodes`` replay what exists, record missing keys     ``new_episodes``
``all``         call the real API for every key, re-record   ``all``; RECORD_FIXTURES=true
``off``         call the real API, store nothing             ``--disable-recording``
=============== ============================================ ===========================
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Final

from castore._storage.public_names import present_as_public


class Mode(StrEnum):
    NONE = "none"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    OFF = "off"

    @property
    def records(self) -> bool:
        """True for the modes that may call the real API and store the result."""
        return self in (Mode.NEW_EPISODES, Mode.ALL)

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        if isinstance(value, Mode):
            return value
        normalized = str(value).strip().lower().replace("-", "_")
        try:
            return cls(normalized)
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            hint = (
                " (VCR's 'once' records missing keys: use new_episodes)"
                if normalized == "once"
                else ""
            )
            raise ValueError(
                f"unknown castore mode {value!r}; choose one of: {choices}{hint}"
            ) from None


_DESCRIPTIONS: Final = {
    Mode.NONE: "replay only",
    Mode.NEW_EPISODES: "record missing keys",
    Mode.ALL: "re-record everything",
    Mode.OFF: "call through, store nothing",
}

ON_EXPIRED_CHOICES: Final = ("warn", "fail", "rerecord")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: A pattern, not a compiled one: re compiles it (and caches it) on first use, and
#: castore's import, paid by every replaying session, compiles nothing it does not use.
_AGE: Final = r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*"


def parse_max_age(value: dt.timedelta | float | str | None) -> dt.timedelta | None:
    """``timedelta``, seconds, or text such as ``"90s"``, ``"12h"``, ``"30d"``, ``"2w"``."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.timedelta(seconds=value)
    if isinstance(value, str):
        match = re.fullmatch(_AGE, value.lower())
        if match:
            return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(
        f"max_age must be a timedelta, a number of seconds or text like '30d' or '12h', "
        f"not {value!r}"
    )


def check_on_expired(value: str) -> str:
    if value not in ON_EXPIRED_CHOICES:
        raise ValueError(f"on_expired must be one of {ON_EXPIRED_CHOICES}, not {value!r}")
    return value


present_as_public(Mode)
