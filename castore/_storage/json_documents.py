"""Parsing the JSON files of a store (indexes, castore.json, last-run.json) defensively.

``json.loads`` alone accepts what castore must not: ``NaN`` and ``Infinity`` (an index
that reads fine and then refuses every later write), numbers of thousands of digits
(Python's int-to-string limit raises later, far from the file), nesting deep enough to
exhaust the interpreter's stack, and lone UTF-16 surrogates that no file can be written
with. :func:`parse_document` refuses each of them with a message that names the file.
"""

from __future__ import annotations

import json
import os
import re
import sys
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


# Built once: ``json.loads`` with a hook builds a decoder per call, which costs a replay
# more than parsing its index does.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)
# Python's own int-to-string limit refuses long integers in C, with no call per number;
# only a process that lifted it (sys.set_int_max_str_digits) needs the hook.
_COUNTING_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_parse_int)
#: Compiled by re when first needed: only a refused document reads it.
_PYTHON_LIMIT: Final = r"value has (\d+) digits"


def _decoder() -> json.JSONDecoder:
    # Python's default limit is castore's: its own refusal then names the digits. A
    # process that changed it gets the hook, and the messages castore always gave.
    return _DECODER if sys.get_int_max_str_digits() == MAX_INT_DIGITS else _COUNTING_DECODER


def _decode(text: str) -> Any:
    """``decoder.decode(text)``, without its two whitespace scans for a document that
    starts at its first character and ends with at most whitespace (every file castore
    writes); anything else goes through ``decode`` for its errors."""
    decoder = _decoder()
    try:
        document, end = decoder.raw_decode(text)
    except ValueError:
        return decoder.decode(text)  # raises, or accepts leading whitespace
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return decoder.decode(text)  # raises "Extra data"
    return document


#: What JSON calls whitespace (json.decoder.WHITESPACE).
_JSON_WHITESPACE: Final = " \t\n\r"


def parse_document(raw: bytes, path: str | os.PathLike[str]) -> Any:
    """The JSON document in ``raw``; :class:`IndexFormatError` names ``path`` otherwise."""
    try:
        # As json.loads decodes bytes: UTF-8, or the UTF-16/32 (or BOM) it detects. A
        # file castore wrote starts with "{" and no NUL after it, which json calls UTF-8.
        utf8 = raw[:1] == b"{" and raw[1:2] != b"\x00"
        text = raw.decode("utf-8" if utf8 else json.detect_encoding(raw), "surrogatepass")
        document = _decode(text)
    except RecursionError:
        raise IndexFormatError(Path(path), "its JSON nests too deep to be a castore file") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError and the refusals
        if raw.lstrip().startswith((b"<<<<<<<", b"version https://git-lfs")):
            detail = "it holds git conflict markers or an LFS pointer, not JSON"
        elif too_long := re.search(_PYTHON_LIMIT, str(error)):
            detail = f"an integer of {too_long[1]} digits (at most {MAX_INT_DIGITS})"
        else:
            detail = f"not valid JSON ({error})"
        raise IndexFormatError(Path(path), detail) from None
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then walk the strings
        for text in _strings(document):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                detail = f"it holds a lone UTF-16 surrogate in {text[:40]!r}"
                raise IndexFormatError(Path(path), detail) from None
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
