"""Scrubbing secrets before anything is written.

A recorder's ``redact`` hook receives every value (after its codec turned it into plain
data) and every metadata dict just before they are stored, and returns what to store
instead. :func:`redactor` builds the common hook: blank out fields by name at any depth,
and replace text matching patterns (API keys, bearer tokens) in every string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Redact = Callable[[Any], Any]


def redactor(
    *,
    keys: Iterable[str] = (),
    patterns: Iterable[str | re.Pattern[str]] = (),
    replacement: str = "[REDACTED]",
) -> Redact:
    """A redaction hook: ``keys`` are field names (any depth, case-insensitive) whose values
    become ``replacement``; ``patterns`` are regular expressions replaced in every string.

    >>> scrub = redactor(keys=["api_key"], patterns=[r"sk-[A-Za-z0-9]{8,}"])
    >>> scrub({"api_key": "k", "log": "used sk-abcdefghij"})
    {'api_key': '[REDACTED]', 'log': 'used [REDACTED]'}
    """
    names = {name.lower() for name in keys}
    compiled = [re.compile(pattern) for pattern in patterns]

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for pattern in compiled:
                value = pattern.sub(replacement, value)
            return value
        if isinstance(value, Mapping):
            return {
                key: replacement if str(key).lower() in names else scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, tuple):
            return tuple(scrub(item) for item in value)
        return value

    return scrub
