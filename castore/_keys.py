"""Names: which namespaces and keys castore accepts, and how long keys are shortened.

A namespace becomes a path under ``index/``, so it is checked strictly: it can never reach
outside the store, and it stays portable to Windows and macOS checkouts. A key is only ever
a string inside a JSON index, never a path, so any non-empty text is a valid key; keys
longer than :data:`MAX_KEY_LENGTH` are shortened to a readable prefix plus a hash, as the
seeds' recorder did, so that whole prompts can serve as keys.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import blake3

from castore._codec import pack_value
from castore.errors import InvalidNameError

MAX_KEY_LENGTH: Final = 100
KEY_PREFIX_LENGTH: Final = 64
KEY_HASH_LENGTH: Final = 24
MAX_NAMESPACE_LENGTH: Final = 400

_FORBIDDEN_IN_SEGMENT = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{n}" for n in range(1, 10)]
    + [f"lpt{n}" for n in range(1, 10)]
)


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is a safe relative path of ``/``-separated segments."""
    if isinstance(namespace, str) and namespace in _ACCEPTED:
        return namespace
    _check_namespace(namespace)
    assert isinstance(namespace, str)
    if len(_ACCEPTED) < 65536:  # a store has far fewer namespaces; bound it anyway
        _ACCEPTED.add(namespace)
    return namespace


_ACCEPTED: set[str] = set()


def _check_namespace(namespace: object) -> None:
    if not isinstance(namespace, str) or not namespace:
        raise InvalidNameError(f"a namespace must be a non-empty string, not {namespace!r}")
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise InvalidNameError(
            f"namespace {namespace[:60]!r}… is {len(namespace)} characters long; "
            f"castore accepts at most {MAX_NAMESPACE_LENGTH}"
        )
    if namespace.startswith("/"):
        raise InvalidNameError(
            f"namespace {namespace!r} is an absolute path; use a path relative to the store, "
            f"such as 'tests/test_translate'"
        )
    for segment in namespace.split("/"):
        problem = _segment_problem(segment)
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


#: Request parts that configure the client rather than the request: left out by default.
DEFAULT_EXCLUDED: Final = (
    "api_key",
    "api_base",
    "base_url",
    "organization",
    "project",
    "timeout",
    "max_retries",
    "http_client",
)


def request_key(
    label: str | None = None, /, *, exclude: Iterable[str] = DEFAULT_EXCLUDED, **parts: Any
) -> str:
    """A stable key for a request, derived by canonically hashing its parts.

    ``request_key(model="gpt-4o", messages=msgs, temperature=0, api_key=KEY)`` gives
    ``"gpt-4o-<32 hex>"``: the same for equal requests whatever the order of dict keys,
    different as soon as a prompt or parameter changes. Parts named in ``exclude`` (api
    keys, base URLs…) never reach the hash; a dotted name such as ``"headers.authorization"``
    leaves out a nested field (matched case-insensitively, as HTTP headers are).
    """
    excluded = [name.lower().split(".") for name in exclude]
    kept = _without(parts, excluded)
    digest = blake3.blake3(pack_value(_canonical(kept))).hexdigest()[:32]
    prefix = label if label is not None else str(parts.get("model") or "request")
    return f"{prefix[:48]}-{digest}"


def _without(mapping: Mapping[str, Any], excluded: list[list[str]]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in mapping.items():
        lowered = str(name).lower()
        if [lowered] in excluded:
            continue
        nested = [path[1:] for path in excluded if len(path) > 1 and path[0] == lowered]
        kept[name] = _without(value, nested) if nested and isinstance(value, Mapping) else value
    return kept


def _canonical(value: Any) -> Any:
    """A form of ``value`` whose packed bytes do not depend on dict or set order."""
    if isinstance(value, Mapping):
        # Dicts pack in insertion order, so inserting in sorted order is canonical.
        ordered = sorted(value.items(), key=lambda item: pack_value(_canonical(item[0])))
        return {_hashable(_canonical(name)): _canonical(item) for name, item in ordered}
    if isinstance(value, list | tuple):  # a request means the same JSON either way
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item) for item in value), key=pack_value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return _canonical(dump(mode="json"))
    return value


def _hashable(value: Any) -> Any:
    """Canonical dict keys become lists when they were tuples; make them keys again."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value
