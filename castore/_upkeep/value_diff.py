"""What changed between two recorded values: JSON paths, ignore patterns, text diffs.

Values are compared as their JSON views (``jsonview``), so bytes, tuples and datetimes
compare as ``castore show`` prints them. A change is named by a JSON path
(``$.choices[0].message.content``) and is an addition, a removal or a new value. Long
strings, LLM answers above all, also get a word diff (one line) or a line diff (several),
and every comparison reports the share of its text that changed.

Ignore patterns are JSON paths with wildcards (``castore._recording.json_paths``),
matched against a change's path or any of its parents, so ``$..usage`` ignores everything
under every ``usage``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from castore._recording.json_paths import IgnorePattern, Step, format_path

#: A string at least this long, or holding a line break, gets a text diff.
LONG_TEXT: Final = 40
#: Above this product of two token counts, difflib's matching is skipped (see opcodes).
MAX_MATCH_WORK: Final = 4_000_000
#: Keys whose string values make a stream's joined text (openai deltas, anthropic events).
STREAM_TEXT_KEYS: Final = frozenset({"content", "text", "partial_json", "thinking"})


@dataclass(frozen=True)
class TextDiff:
    """A long string's change: word runs (one line) or lines (several)."""

    unit: Literal["words", "lines"]
    pieces: tuple[tuple[Literal["=", "-", "+"], str], ...]
    """In order: kept (``=``), removed (``-``) and added (``+``) runs."""


@dataclass(frozen=True)
class Change:
    path: tuple[Step, ...]
    kind: Literal["changed", "added", "removed"]
    old: Any = None
    new: Any = None
    text: TextDiff | None = None

    @property
    def where(self) -> str:
        return format_path(self.path)


@dataclass
class ValueDiff:
    """Every change between two values, after ignores, and how much of the text changed."""

    changes: list[Change] = field(default_factory=list)
    ignored: int = 0
    """Changes dropped by the ignore patterns."""
    words: int = 0
    """Words in the longer side's text (all string leaves, ignored paths left out)."""
    changed_words: int = 0

    @property
    def share(self) -> float:
        """The share of the text that changed (0 to 1); for text-less values, 1 if any
        change remains."""
        if self.words:
            return min(1.0, self.changed_words / self.words)
        return 1.0 if self.changes else 0.0


def diff_values(old: Any, new: Any, ignore: Sequence[IgnorePattern] = ()) -> ValueDiff:
    """Compare two JSON views."""
    result = ValueDiff()
    _diff(old, new, (), ignore, result)
    if result.changes:
        result.words = max(_word_count(old, (), ignore), _word_count(new, (), ignore))
        result.changed_words = sum(_changed_words(change) for change in result.changes)
    return result


def diff_streams(
    old_chunks: Sequence[Any], new_chunks: Sequence[Any], ignore: Sequence[IgnorePattern] = ()
) -> ValueDiff:
    """Streams compare as their joined text plus their chunk count: a stream cut at other
    places, with the same text, is the same answer."""
    old_text, new_text = stream_text(old_chunks), stream_text(new_chunks)
    result = ValueDiff()
    if old_text != new_text:
        result.changes.append(
            Change(("(text)",), "changed", old_text, new_text, text_diff(old_text, new_text))
        )
    if len(old_chunks) != len(new_chunks):
        result.changes.append(Change(("(chunks)",), "changed", len(old_chunks), len(new_chunks)))
    if not old_text and not new_text:  # chunks without text: compare them whole
        inner = diff_values(list(old_chunks), list(new_chunks), ignore)
        result.changes.extend(inner.changes)
        result.ignored += inner.ignored
    old_words, new_words = old_text.split(), new_text.split()
    result.words = max(len(old_words), len(new_words))
    result.changed_words = _changed(old_words, new_words) if result.changes else 0
    return result


def stream_text(chunks: Iterable[Any]) -> str:
    """The text a stream's chunks add up to: string chunks, and the strings under
    ``content``/``text``/``partial_json``/``thinking`` in structured chunks."""
    parts: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        else:
            parts.extend(_stream_strings(chunk))
    return "".join(parts)


def _stream_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in STREAM_TEXT_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _stream_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _stream_strings(item)


def json_inside(value: str) -> Any:
    """The JSON object or array a string holds (an HTTP body as VCR.py keeps it), else
    None. Such strings are compared, counted and ignored by path as that JSON
    (``$.body.string.content[0].text``), so ``$..id`` reaches the ids in a body."""
    if len(value) < 2:
        return None
    if (value[0], value[-1]) not in _JSON_ENDS:
        value = value.strip()  # pretty-printed bodies end in a newline
        if len(value) < 2 or (value[0], value[-1]) not in _JSON_ENDS:
            return None
    return _parsed(value)


_JSON_ENDS: Final = frozenset({("{", "}"), ("[", "]")})


@functools.lru_cache(maxsize=1024)
def _parsed(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None


def _diff(
    old: Any, new: Any, path: tuple[Step, ...], ignore: Sequence[IgnorePattern], out: ValueDiff
) -> None:
    if type(old) is type(new) and old == new:  # C-speed for the unchanged majority
        return
    if isinstance(old, str) and isinstance(new, str):
        old_json, new_json = json_inside(old), json_inside(new)
        if old_json is not None and new_json is not None:
            old, new = old_json, new_json
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            here = (*path, key)
            if key not in new:
                _add(out, Change(here, "removed", old=old[key]), ignore)
            elif key not in old:
                _add(out, Change(here, "added", new=new[key]), ignore)
            else:
                _diff(old[key], new[key], here, ignore, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            here = (*path, index)
            if index >= len(new):
                _add(out, Change(here, "removed", old=old[index]), ignore)
            elif index >= len(old):
                _add(out, Change(here, "added", new=new[index]), ignore)
            else:
                _diff(old[index], new[index], here, ignore, out)
        return
    if old == new:  # leaves compare as Python does: numbers by value (0 == 0.0, True == 1)
        return
    text = text_diff(old, new) if _is_long_text(old) and _is_long_text(new) else None
    _add(out, Change(path, "changed", old, new, text), ignore)


def _add(out: ValueDiff, change: Change, ignore: Sequence[IgnorePattern]) -> None:
    if any(pattern.covers(change.path) for pattern in ignore):
        out.ignored += 1
    else:
        out.changes.append(change)


def _is_long_text(value: Any) -> bool:
    return isinstance(value, str) and (len(value) >= LONG_TEXT or "\n" in value)


_WORD = re.compile(r"\s+|[^\s]+")


def text_diff(old: str, new: str) -> TextDiff:
    """A word diff for one-line strings, a line diff when either has several lines."""
    unit: Literal["words", "lines"] = "lines" if "\n" in old or "\n" in new else "words"
    if unit == "lines":
        old_parts, new_parts = old.splitlines(keepends=True), new.splitlines(keepends=True)
    else:
        old_parts, new_parts = _WORD.findall(old), _WORD.findall(new)
    pieces: list[tuple[Literal["=", "-", "+"], str]] = []
    for tag, i1, i2, j1, j2 in opcodes(old_parts, new_parts):
        if tag == "equal":
            pieces.append(("=", "".join(old_parts[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("-", "".join(old_parts[i1:i2])))
        if j2 > j1:
            pieces.append(("+", "".join(new_parts[j1:j2])))
    return TextDiff(unit, tuple(pieces))


def _word_count(value: Any, path: tuple[Step, ...], ignore: Sequence[IgnorePattern]) -> int:
    """Words in every string leaf outside the ignored paths (JSON inside strings counted
    as that JSON's strings)."""
    if not ignore:
        return _all_words(value)
    if path and any(pattern.covers(path) for pattern in ignore):
        return 0
    if isinstance(value, str):
        inside = json_inside(value)
        return len(value.split()) if inside is None else _word_count(inside, path, ignore)
    if isinstance(value, dict):
        return sum(_word_count(item, (*path, key), ignore) for key, item in value.items())
    if isinstance(value, list):
        return sum(_word_count(item, (*path, n), ignore) for n, item in enumerate(value))
    return 0


def _all_words(value: Any) -> int:
    """:func:`_word_count` with nothing ignored: no paths to build."""
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            inside = json_inside(item)
            if inside is None:
                count += len(item.split())
            else:
                pending.append(inside)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _changed_words(change: Change) -> int:
    """Words a change touches: only changed leaves are compared, word by word."""
    if change.kind == "added":
        return _word_count(change.new, (), ())
    if change.kind == "removed":
        return _word_count(change.old, (), ())
    if isinstance(change.old, str) and isinstance(change.new, str):
        return _changed(change.old.split(), change.new.split())
    return max(_word_count(change.old, (), ()), _word_count(change.new, (), ()))


def _changed(old_words: list[str], new_words: list[str]) -> int:
    return sum(
        max(i2 - i1, j2 - j1)
        for tag, i1, i2, j1, j2 in opcodes(old_words, new_words)
        if tag != "equal"
    )


Opcode = tuple[str, int, int, int, int]


def opcodes(old: Sequence[str], new: Sequence[str]) -> list[Opcode]:
    """difflib's opcodes, made affordable for long texts. A re-recorded answer mostly
    keeps its start and end, so the common prefix and suffix are cut off first; the
    middle goes to difflib, whose matching grows with the product of the two lengths,
    unless that product passes :data:`MAX_MATCH_WORK`: then the middle is one
    replacement (the share of changed text is then an upper bound)."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end = 0
    while end < limit - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    old_middle, new_middle = old[start : len(old) - end], new[start : len(new) - end]
    result: list[Opcode] = []
    if start:
        result.append(("equal", 0, start, 0, start))
    if len(old_middle) * len(new_middle) > MAX_MATCH_WORK:
        result.append(("replace", start, start + len(old_middle), start, start + len(new_middle)))
    elif old_middle or new_middle:
        matcher = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            result.append((tag, i1 + start, i2 + start, j1 + start, j2 + start))
    if end:
        result.append(("equal", len(old) - end, len(old), len(new) - end, len(new)))
    return result
