"""JSON paths with wildcards: what ``castore diff --ignore`` and the volatile parts of a
recording (``volatile``) name.

A pattern is matched against a value's path or any of its parents, so ``$..usage`` covers
everything under every ``usage``:

=================== ===============================================
``$.a.b``           the member ``b`` of the top-level ``a``
``$..id``           an ``id`` member at any depth
``$.choices[*]``    every item of ``choices``; ``[0]`` only the first
``$.*``             any one member or item
``$['odd key']``    a member whose name is not an identifier
``headers.date``    the same as ``$.headers.date``
=================== ===============================================

An HTTP recording's headers are members named in lower case, and a pattern's member name
right after ``headers`` is lowered too: ``headers.Date`` and ``$.headers.date`` are one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

#: One step of a path: a member name or a list index.
Step = str | int

_IDENTIFIER: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
#: The member whose children are header names (matched in lower case).
_HEADERS: Final = "headers"


class PatternError(ValueError):
    """An ignore pattern that is not a JSON path castore understands."""


class _Token(NamedTuple):
    kind: Literal["child", "descend", "index"]
    name: str | int | None  # None: any (``*``)


class IgnorePattern(NamedTuple):
    text: str
    tokens: tuple[_Token, ...]

    def covers(self, path: Sequence[Step]) -> bool:
        """True when the pattern names ``path`` or one of its parents."""
        return _covers(self.tokens, 0, path, 0)


def parse_pattern(text: str) -> IgnorePattern:
    """``$..id`` and friends (see the module docstring); PatternError says what is wrong."""
    source = text.strip()
    if _IDENTIFIER.match(source) and not source.startswith("$"):
        source = "$." + source  # ``headers.date``: a path from the top, written short
    if not source.startswith("$"):
        raise PatternError(f"ignore pattern {text!r} must start with '$' (for example '$..id')")
    tokens: list[_Token] = []
    position = 1
    while position < len(source):
        rest = source[position:]
        if rest.startswith(".."):
            name, used = _name(rest[2:], text)
            tokens.append(_Token("descend", name))
            position += 2 + used
        elif rest.startswith("."):
            name, used = _name(rest[1:], text)
            tokens.append(_Token("child", name))
            position += 1 + used
        elif rest.startswith("["):
            token, used = _bracket(rest, text)
            tokens.append(token)
            position += used
        else:
            raise PatternError(f"ignore pattern {text!r}: unexpected {rest[:10]!r}")
    if not tokens:
        raise PatternError(f"ignore pattern {text!r} would ignore the whole value")
    for at in range(1, len(tokens)):  # header names are matched in lower case
        before, token = tokens[at - 1], tokens[at]
        if before.name == _HEADERS and token.kind == "child" and isinstance(token.name, str):
            tokens[at] = _Token("child", token.name.lower())
    return IgnorePattern(text, tuple(tokens))


def _name(rest: str, text: str) -> tuple[str | None, int]:
    if rest.startswith("*"):
        return None, 1
    if rest.startswith("["):  # `$..['key']` / `$..[*]`: the bracket names the step
        raise PatternError(f"ignore pattern {text!r}: write `$..key` or `$['key']`")
    found = _IDENTIFIER.match(rest)
    if found is None:
        raise PatternError(f"ignore pattern {text!r}: expected a member name after '.'")
    return found.group(), found.end()


def _bracket(rest: str, text: str) -> tuple[_Token, int]:
    end = rest.find("]")
    if end < 0:
        raise PatternError(f"ignore pattern {text!r}: unclosed '['")
    inside = rest[1:end].strip()
    if inside == "*":
        return _Token("index", None), end + 1
    if inside.isdigit():
        return _Token("index", int(inside)), end + 1
    if len(inside) >= 2 and inside[0] == inside[-1] and inside[0] in "'\"":
        return _Token("child", inside[1:-1]), end + 1
    raise PatternError(f"ignore pattern {text!r}: [{inside}] is not an index, * or 'name'")


def _step_matches(token: _Token, step: Step) -> bool:
    if token.kind == "index":
        return isinstance(step, int) and token.name in (None, step)
    if token.name is None:
        return True
    return isinstance(step, str) and step == token.name


def _covers(tokens: Sequence[_Token], at: int, path: Sequence[Step], depth: int) -> bool:
    if at == len(tokens):
        return True  # the pattern named a parent of the path (or the path itself)
    if depth == len(path):
        return False
    token = tokens[at]
    if token.kind == "descend":
        return any(
            _step_matches(token, path[here]) and _covers(tokens, at + 1, path, here + 1)
            for here in range(depth, len(path))
        )
    return _step_matches(token, path[depth]) and _covers(tokens, at + 1, path, depth + 1)


def format_path(path: Sequence[Step]) -> str:
    """``$.choices[0].message['odd key']``."""
    parts = ["$"]
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(parts)
