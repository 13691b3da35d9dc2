"""castore's settings checked before any test runs: one usage error, not a failing suite.

A typo in ``--castore-mode=once`` used to surface as every test erroring at set-up, with a
traceback per test. The option, the ini file's ``castore_mode`` and the ``castore`` and
``castore_http`` markers' keywords are checked when the session starts (the option as
argparse parses it, the ini when the session is configured, markers once collected), and
a bad one stops the run with a message naming what is wrong, where, and what is valid.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Final

from castore._recording.modes import Mode, check_on_expired, parse_max_age
from castore._recording.recorder import Recorder

#: The ``castore`` marker's keywords that the session reads itself (not a recorder's).
SESSION_KEYWORDS: Final = frozenset({"allow_hosts", "allow_misses"})
#: A recorder's keywords that a marker cannot give (the session sets them).
_NOT_FROM_MARKERS: Final = frozenset({"store", "listener"})
#: The ``castore_http`` marker's keywords (``HttpRecorder``'s, which this layer cannot
#: import: ``integrations`` sits above it).
HTTP_KEYWORDS: Final = frozenset(
    {
        "match_on",
        "match_headers",
        "drop_headers",
        "drop_query",
        "key",
        "pace",
        "redact_body",
        "ignore_hosts",
    }
)


def castore_keywords() -> frozenset[str]:
    """What ``@pytest.mark.castore(...)`` accepts: the recorder's options and the session's."""
    recorder = set(inspect.signature(Recorder).parameters) - _NOT_FROM_MARKERS
    return frozenset(recorder | SESSION_KEYWORDS)


def mode_option(value: str) -> str:
    """``--castore-mode``'s type: argparse reports a bad value as a usage error."""
    try:
        return Mode.parse(value).value
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def ini_problem(value: str, where: str) -> str | None:
    """What is wrong with the ini file's ``castore_mode``, if anything."""
    if not value:
        return None
    try:
        Mode.parse(value)
    except ValueError as error:
        return f"castore_mode = {value} ({where}): {error}"
    return None


def marker_problems(marks: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """The problems of ``(node id, marker name, keywords)`` triples, one line each."""
    allowed = {"castore": castore_keywords(), "castore_http": HTTP_KEYWORDS}
    problems = []
    for nodeid, name, keywords in marks:
        known = allowed.get(name)
        if known is None:
            continue
        for keyword in sorted(set(keywords) - known):
            problems.append(
                f"{nodeid}: @pytest.mark.{name}({keyword}=…) is not an option; "
                f"it takes: {', '.join(sorted(known))}"
            )
        if name == "castore":
            problems.extend(f"{nodeid}: {problem}" for problem in _value_problems(keywords))
    return problems


def _value_problems(keywords: Mapping[str, Any]) -> list[str]:
    checks = (
        ("mode", Mode.parse),
        ("max_age", parse_max_age),
        ("on_expired", check_on_expired),
    )
    problems = []
    for name, check in checks:
        if keywords.get(name) is None:
            continue
        try:
            check(keywords[name])
        except ValueError as error:
            problems.append(f"@pytest.mark.castore({name}={keywords[name]!r}): {error}")
    return problems
