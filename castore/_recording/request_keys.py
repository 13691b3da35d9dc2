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
    key.legacy = None
    if _may_hold_integral_float(kept):  # else the older spelling is this one: no 2nd hash
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
    pending: list[tuple[str, Any]] = [(prefix, request)]
    # Each part is made plain when reached, so a large request (a long conversation,
    # tools with their schemas) costs its first leaves, not a walk over all of it: an
    # HTTP recorder summarises every request it sees, replayed ones included.
    while pending and len(found) < SUMMARY_LEAVES:
        where, item = pending.pop(0)
        item = _as_data(item)
        if isinstance(item, Mapping):
            members = {
                str(name): member for name, member in item.items() if not _is_not_given(member)
            }
            pending[:0] = [(f"{where}.{name}", member) for name, member in members.items()]
        elif isinstance(item, list | tuple):
            kept = [member for member in item if not _is_not_given(member)]
            pending[:0] = [(f"{where}[{n}]", member) for n, member in enumerate(kept)]
        else:
            found[where] = _short_leaf(item)
    return found


def _as_data(value: Any) -> Any:
    """A model, a dataclass or a class as its fields (its canonical form); anything else
    as it is. Mappings and sequences keep their own order (a summary is read by people)."""
    if type(value) in _PLAIN or isinstance(value, Mapping | list | tuple):
        return value
    if isinstance(value, type) or dataclasses.is_dataclass(value) or hasattr(value, "model_dump"):
        return _canonical(value)
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


#: The types JSON decodes to, which are never an SDK's "not given" placeholder.
_JSON_LEAVES: Final = frozenset({str, int, float, bool, type(None)})
#: Values a summary takes as they are, known by their exact type (JSON's, and tuples).
_PLAIN: Final = _JSON_LEAVES | {dict, list, tuple}


def _may_hold_integral_float(value: Any) -> bool:
    """False when ``value`` is JSON with no whole number written as a float, so its key
    by value and its older, literal key are the same; True when it has one, or when it
    holds anything else (then both are derived and compared)."""
    kind = type(value)
    if kind is float:
        return bool(value.is_integer())
    if kind is str or kind is int or kind is bool or value is None:
        return False
    if kind is dict:
        return any(type(name) is not str for name in value) or any(
            _may_hold_integral_float(item) for item in value.values()
        )
    if kind is list or kind is tuple:
        return any(_may_hold_integral_float(item) for item in value)
    return True


def _str_key_order(item: tuple[str, Any]) -> tuple[int, bytes]:
    """The order of a str dict key's packed bytes (msgpack writes a str as a header that
    grows with its UTF-8 length, then the bytes): by length, then by bytes. Invalid
    UTF-8 (a lone surrogate) still sorts; packing the result then names it."""
    encoded = item[0].encode("utf-8", "surrogatepass")
    return len(encoded), encoded


def _canonical(value: Any, by_value: bool = True) -> Any:
    """A form of ``value`` whose packed bytes do not depend on dict or set order (and,
    ``by_value``, on whether a whole number is written as an int or a float)."""
    kind = type(value)
    # JSON values (what an HTTP body decodes to, what most SDK arguments are) first, by
    # exact type: the same form as the general path below, in a fraction of its time.
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if by_value and value.is_integer() else value
    if kind is dict and all(type(name) is str for name in value):
        ordered = sorted(value.items(), key=_str_key_order)
        return {
            name: item if type(item) is str else _canonical(item, by_value)
            for name, item in ordered
            if type(item) in _JSON_LEAVES or not _is_not_given(item)
        }
    if kind is list:
        return [
            _canonical(item, by_value)
            for item in value
            if type(item) in _JSON_LEAVES or not _is_not_given(item)
        ]
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
