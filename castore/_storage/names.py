"""Names: which namespaces and keys castore accepts, and how long keys are shortened.

A namespace becomes a path under ``index/``, so it is checked strictly: it can never reach
outside the store, and it stays portable to Windows and macOS checkouts. A key is only ever
a string inside a JSON index, never a path, so any non-empty text is a valid key; keys
longer than :data:`MAX_KEY_LENGTH` are shortened to a readable prefix plus a hash, as the
seeds' recorder did, so that whole prompts can serve as keys.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import blake3

from castore.errors import InvalidNameError

MAX_KEY_LENGTH: Final = 100
KEY_PREFIX_LENGTH: Final = 64
KEY_HASH_LENGTH: Final = 24
#: A new namespace becomes ``index/<namespace>.json`` inside a repository checkout: 200
#: characters leave room under Windows' 260-character path limit for the checkout itself.
MAX_NAMESPACE_LENGTH: Final = 200
#: One segment is one directory or file name (NAME_MAX is 255 bytes on most systems).
MAX_SEGMENT_LENGTH: Final = 100
#: What castore before 0.2's name rules accepted, and so what an existing index may use.
MAX_EXISTING_NAMESPACE_LENGTH: Final = 400

_FORBIDDEN_IN_SEGMENT = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned
# characters, and line or paragraph separators: invisible or misleading in a file name.
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{n}" for n in range(1, 10)]
    + [f"lpt{n}" for n in range(1, 10)]
)


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is a safe relative path of ``/``-separated segments.

    These are the rules every read and write applies: nothing that could leave the store
    or break a checkout. :func:`check_new_namespace` adds the stricter rules for creating
    a namespace; an index written under the older rules stays readable and writable.
    """
    if isinstance(namespace, str) and namespace in _ACCEPTED:
        return namespace
    _check_namespace(namespace, new=False)
    assert isinstance(namespace, str)
    if len(_ACCEPTED) < 65536:  # a store has far fewer namespaces; bound it anyway
        _ACCEPTED.add(namespace)
    return namespace


def check_new_namespace(namespace: object) -> str:
    """Return ``namespace`` if a new namespace may have this name: safe, and also free of
    what misleads a reader or another system (``~``, URL escapes, invisible characters,
    look-alike dots, non-NFC spellings, paths too long for Windows)."""
    if isinstance(namespace, str) and namespace in _ACCEPTED_NEW:
        return namespace
    _check_namespace(namespace, new=True)
    assert isinstance(namespace, str)
    if len(_ACCEPTED_NEW) < 65536:
        _ACCEPTED_NEW.add(namespace)
    return namespace


_ACCEPTED: set[str] = set()
_ACCEPTED_NEW: set[str] = set()


def _check_namespace(namespace: object, *, new: bool) -> None:
    if not isinstance(namespace, str) or not namespace:
        raise InvalidNameError(f"a namespace must be a non-empty string, not {namespace!r}")
    limit = MAX_NAMESPACE_LENGTH if new else MAX_EXISTING_NAMESPACE_LENGTH
    if len(namespace) > limit:
        raise InvalidNameError(
            f"namespace {namespace[:60]!r}… is {len(namespace)} characters long; "
            f"castore accepts at most {limit}"
        )
    if namespace.startswith("/"):
        raise InvalidNameError(
            f"namespace {namespace!r} is an absolute path; use a path relative to the store, "
            f"such as 'tests/test_translate'"
        )
    for segment in namespace.split("/"):
        problem = _segment_problem(segment) or (_new_segment_problem(segment) if new else "")
        if problem:
            raise InvalidNameError(
                f"namespace {namespace!r} is refused: {problem}. Namespaces are relative paths "
                f"inside the store made of plain names, such as 'tests/integration/test_ir'"
            )


def _segment_problem(segment: str) -> str:
    if not segment:
        return "it has an empty path segment ('//' or a trailing '/')"
    if segment in {".", ".."}:
        return f"the segment {segment!r} would leave the store directory"
    if segment.startswith("."):
        return f"the segment {segment!r} starts with a dot (hidden files are castore's own)"
    if segment != segment.strip() or segment.endswith("."):
        return f"the segment {segment!r} has leading/trailing spaces or a trailing dot"
    bad = _FORBIDDEN_IN_SEGMENT.search(segment)
    if bad:
        return f"the segment {segment!r} contains {bad.group()!r}"
    if segment.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return f"the segment {segment!r} is a reserved device name on Windows"
    return ""


def _new_segment_problem(segment: str) -> str:
    if segment.startswith("~"):
        return f"the segment {segment!r} starts with '~', which shells expand to a home folder"
    if len(segment) > MAX_SEGMENT_LENGTH:
        return f"the segment {segment[:40]!r}… is over {MAX_SEGMENT_LENGTH} characters"
    escaped = _URL_ESCAPE.search(segment)
    if escaped:
        return f"the segment {segment!r} holds the URL escape {escaped.group()!r}"
    return "" if segment.isascii() else _unicode_problem(segment)


def _unicode_problem(segment: str) -> str:
    """Non-ASCII names are welcome unless they hide or imitate something.

    Refused: invisible characters (a bidi override can make 'txt.exe' read as 'exe.txt'),
    look-alikes of path punctuation (U+2024 ONE DOT LEADER and U+FF0E FULLWIDTH FULL STOP
    normalize to '.'), and names not in NFC, which macOS stores under another spelling.
    """
    for character in segment:
        if character.isascii():
            continue
        if unicodedata.category(character) in _HIDDEN_CATEGORIES or (
            character.isspace() and character != " "
        ):
            code = f"U+{ord(character):04X}"
            return f"the segment {segment!r} contains the invisible character {code}"
        folded = unicodedata.normalize("NFKC", character)
        if any(part.isascii() and not part.isalnum() for part in folded):
            return (
                f"the segment {segment!r} contains U+{ord(character):04X}, "
                f"which looks like {folded!r}"
            )
    if unicodedata.normalize("NFC", segment) != segment:
        return f"the segment {segment!r} is not in Unicode NFC form; write it composed"
    return ""


def stored_key(key: object) -> str:
    """The key as it is written in the index: itself, or a readable prefix plus a hash."""
    if type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii():
        return key  # the common case, checked without encoding
    if not isinstance(key, str) or not key:
        raise InvalidNameError(f"a key must be a non-empty string, not {key!r}")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(
            f"key {key[:60]!r} contains unpaired surrogates and cannot be written as UTF-8"
        ) from None
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:KEY_PREFIX_LENGTH]}…{blake3.blake3(encoded).hexdigest()[:KEY_HASH_LENGTH]}"
