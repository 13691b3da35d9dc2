"""Keys derived from requests: equal requests, equal keys, whatever the order of their parts.

Where a test has no natural name for a call, ``request_key`` hashes the call's arguments
canonically, leaving out the parts that configure the client rather than the request
(API keys, base URLs, timeouts), so that rotating a key or moving a proxy re-records nothing.

Canonical means: dict and set order do not count; numbers compare by value (``0`` and
``0.0`` are one key, as they are one JSON number to the API); the SDKs' "not given"
sentinels (openai's ``NOT_GIVEN``, anthropic's ``NOT_GIVEN`` and ``omit``) are left out,
as the SDK leaves them out of the request; a class (``response_format=Answer``) counts by
its import path and JSON schema. Keys made before numbers compared by value stay found:
the key carries its older spelling (:attr:`RequestKey.legacy`), which a recorder replays
when only that one is recorded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import blake3

from castore._storage.codec import EncodeError, pack_value
from castore.errors import InvalidNameError

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


class RequestKey(str):
    """A key from :func:`request_key`: a plain ``str``, plus ``legacy``, the key castore
    before 0.2 derived for the same request where it differs (integral floats), else None."""

    __slots__ = ("legacy",)
    legacy: str | None


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
    prefix = label if label is not None else str(parts.get("model") or "request")
    key = RequestKey(f"{prefix[:48]}-{_digest(kept, by_value=True)}")
    legacy = f"{prefix[:48]}-{_digest(kept, by_value=False)}"
    key.legacy = legacy if legacy != key else None
    return key


def request_fingerprint(
    request: Any, *, exclude: Iterable[str] = DEFAULT_EXCLUDED
) -> dict[str, str]:
    """Per top-level part of a request, a short canonical digest: what a recording keeps
    (``get_or_record(..., request=...)``) so that a later call under the same key can
    tell whether, and where, its request changed. Client settings are left out, as in
    :func:`request_key`."""
    parts = request if isinstance(request, Mapping) else {"request": request}
    kept = _without(parts, [name.lower().split(".") for name in exclude])
    return {str(name): _digest({"": value}, by_value=True)[:16] for name, value in kept.items()}


#: How much of a request a recording's metadata keeps (to name what changed, in a stale
#: recording's message and a missing one's nearest keys): this many leaves, each string
#: cut to SUMMARY_TEXT characters.
SUMMARY_LEAVES: Final = 40
SUMMARY_TEXT: Final = 300


def request_summary(
    request: Any, prefix: str = "request", *, exclude: Iterable[str] = DEFAULT_EXCLUDED
) -> dict[str, Any]:
    """A request as flat leaves, ``{"request.messages[0].content": "hello", …}``: what a
    recording keeps of its request so that a later, different request can be told apart
    by the very field that changed. Client settings (``exclude``) are left out, as in
    :func:`request_key`; at most :data:`SUMMARY_LEAVES`, strings cut short."""
    if isinstance(request, Mapping):
        request = _without(request, [name.lower().split(".") for name in exclude])
    found: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = [(prefix, _plain(request))]
    while pending and len(found) < SUMMARY_LEAVES:
        where, item = pending.pop(0)
        if isinstance(item, Mapping):
            pending[:0] = [(f"{where}.{key}", member) for key, member in item.items()]
        elif isinstance(item, list | tuple):
            pending[:0] = [(f"{where}[{n}]", member) for n, member in enumerate(item)]
        else:
            found[where] = _short_leaf(item)
    return found


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data (models and dataclasses as their fields), in its own
    order (a summary is read by people)."""
    if isinstance(value, Mapping):
        return {str(name): _plain(item) for name, item in value.items() if not _is_not_given(item)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value if not _is_not_given(item)]
    if isinstance(value, type) or dataclasses.is_dataclass(value) or hasattr(value, "model_dump"):
        return _plain(_canonical(value))
    return value


def _short_leaf(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= SUMMARY_TEXT else value[: SUMMARY_TEXT - 1] + "…"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # the index is JSON, which has no inf or nan
    if value is None or isinstance(value, bool | int | float):
        return value
    return _short_leaf(repr(value))


def _digest(parts: Mapping[str, Any], *, by_value: bool) -> str:
    try:
        packed = pack_value(_canonical(parts, by_value))
    except EncodeError as error:
        raise InvalidNameError(
            f"request_key cannot hash the {error.type_name} at {error.location or 'top level'}: "
            "pass JSON-like values, or leave the part out with exclude="
        ) from None
    return blake3.blake3(packed).hexdigest()[:32]


def _without(mapping: Mapping[str, Any], excluded: list[list[str]]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in mapping.items():
        lowered = str(name).lower()
        if [lowered] in excluded or _is_not_given(value):
            continue
        nested = [path[1:] for path in excluded if len(path) > 1 and path[0] == lowered]
        kept[name] = _without(value, nested) if nested and isinstance(value, Mapping) else value
    return kept


#: The SDKs' placeholders for "argument not passed": openai.NOT_GIVEN, anthropic.omit…
_NOT_GIVEN_TYPES: Final = frozenset({"NotGiven", "Omit"})


def _is_not_given(value: Any) -> bool:
    return type(value).__name__ in _NOT_GIVEN_TYPES and not value


def _canonical(value: Any, by_value: bool = True) -> Any:
    """A form of ``value`` whose packed bytes do not depend on dict or set order (and,
    ``by_value``, on whether a whole number is written as an int or a float)."""
    if isinstance(value, Mapping):
        # Dicts pack in insertion order, so inserting in sorted order is canonical.
        items = [(name, item) for name, item in value.items() if not _is_not_given(item)]
        ordered = sorted(items, key=lambda item: pack_value(_canonical(item[0], by_value)))
        return {
            _hashable(_canonical(name, by_value)): _canonical(item, by_value)
            for name, item in ordered
        }
    if isinstance(value, list | tuple):  # a request means the same JSON either way
        return [_canonical(item, by_value) for item in value if not _is_not_given(item)]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item, by_value) for item in value), key=pack_value)
    if isinstance(value, type):
        return _class_form(value)
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _canonical(fields, by_value)
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return _canonical(dump(mode="json"), by_value)
    if by_value and type(value) is float and value.is_integer():
        return int(value)
    return value


def _class_form(cls: type) -> dict[str, Any]:
    """A class given as an argument (``response_format=Answer``): its import path, plus
    its JSON schema for a pydantic model or its fields for a dataclass, so that changing
    the schema changes the key as it changes the request the SDK sends."""
    form: dict[str, Any] = {"$class": f"{cls.__module__}.{cls.__qualname__}"}
    schema = getattr(cls, "model_json_schema", None)
    if callable(schema):
        form["schema"] = _canonical(schema())
    elif dataclasses.is_dataclass(cls):
        form["fields"] = [[f.name, str(f.type)] for f in dataclasses.fields(cls)]
    return form


def _hashable(value: Any) -> Any:
    """Canonical dict keys become lists when they were tuples; make them keys again."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value
