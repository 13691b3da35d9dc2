"""Markers that turn a fixture on, without an autouse fixture.

An autouse fixture that only checks for a marker costs every test of every session a
fixture set-up and tear-down (tens of microseconds each, a tenth of a second per
thousands of tests), most of them in suites that never use the marker. Adding the
fixture's name to the marked items at collection costs nothing at run time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def marks_named(node: Any, names: tuple[str, ...]) -> Iterator[pytest.Mark]:
    """The marks called one of ``names`` on ``node`` and its parents, nearest first, as
    ``node.iter_markers()`` gives them: it walks what ``Node.iter_markers_with_node``
    walks, each node's ``own_markers`` from the item up its parents, in one generator
    instead of pytest's three."""
    while node is not None:
        for mark in node.own_markers:
            if getattr(mark, "name", None) in names:  # as pytest reads a mark's name
                yield mark
        node = node.parent


def closest_marker(node: Any, name: str) -> pytest.Mark | None:
    """``node.get_closest_marker(name)``. A session asks it of every test up to four
    times (collection, the network guard, the recorder fixture): 1.1 µs against 2.1."""
    return next(marks_named(node, (name,)), None)


def request_fixture_for_marker(items: list[pytest.Item], marker: str, fixture: str) -> None:
    """Make every item marked ``marker`` (on the test, its class or its module) use
    ``fixture``, set up where an autouse fixture of function scope would be: after the
    test's session-, package-, module- and class-scoped fixtures, before its own."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is None or fixture in names or closest_marker(item, marker) is None:
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
