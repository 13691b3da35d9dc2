"""Parsing the JSON files of a store (indexes, castore.json, last-run.json) defensively.

``json.loads`` alone accepts what castore must not: ``NaN`` and ``Infinity`` (an index
that reads fine and then refuses every later write), numbers of thousands of digits
(Python's int-to-string limit raises later, far from the file), nesting deep enough to
exhaust the interpreter's stack, and lone UTF-16 surrogates that no file can be written
with. :func:`parse_document` refuses each of them with a message that names the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

from castore.errors import IndexFormatError

#: Digits in an integer: Python's own int-to-string limit, which metadata writes obey too
#: (``json.dumps`` refuses a longer int), so whatever castore wrote it reads back.
MAX_INT_DIGITS: Final = 4300

_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number castore accepts")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def parse_document(raw: bytes, path: Path) -> Any:
    """The JSON document in ``raw``; :class:`IndexFormatError` names ``path`` otherwise."""
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, parse_int=_parse_int)
    except RecursionError:
        raise IndexFormatError(path, "its JSON nests too deep to be a castore file") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError and the refusals
        if raw.lstrip().startswith((b"<<<<<<<", b"version https://git-lfs")):
            detail = "it holds git conflict markers or an LFS pointer, not JSON"
        else:
            detail = f"not valid JSON ({error})"
        raise IndexFormatError(path, detail) from None
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then walk the strings
        for text in _strings(document):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                detail = f"it holds a lone UTF-16 surrogate in {text[:40]!r}"
                raise IndexFormatError(path, detail) from None
    return document


def _strings(document: Any) -> Iterator[str]:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
