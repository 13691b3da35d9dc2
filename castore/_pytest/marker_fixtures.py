"""Markers that turn a fixture on, without an autouse fixture.

An autouse fixture that only checks for a marker costs every test of every session a
fixture set-up and tear-down (tens of microseconds each, a tenth of a second per
thousands of tests), most of them in suites that never use the marker. Adding the
fixture's name to the marked items at collection costs nothing at run time.
"""

from __future__ import annotations

import pytest


def request_fixture_for_marker(items: list[pytest.Item], marker: str, fixture: str) -> None:
    """Make every item marked ``marker`` (on the test, its class or its module) use
    ``fixture``, set up where an autouse fixture of function scope would be: after the
    test's session-, package-, module- and class-scoped fixtures, before its own."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is None or fixture in names or item.get_closest_marker(marker) is None:
            continue
        position = _first_function_scoped(item, names)
        # A new list: parametrized items of one function share the old one.
        item.fixturenames = [*names[:position], fixture, *names[position:]]  # type: ignore[attr-defined]


def _first_function_scoped(item: pytest.Item, names: list[str]) -> int:
    """Where the item's function-scoped fixtures start; 0 when pytest does not say (the
    fixture definitions are pytest internals, read defensively)."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None)
    if not isinstance(definitions, dict):
        return 0
    for position, name in enumerate(names):
        found = definitions.get(name)
        if found and getattr(found[-1], "scope", "function") == "function":
            return position
    return len(names)
