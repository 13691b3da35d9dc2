"""Values as readable JSON, and back, for people and for plain-JSON exports.

``castore show``, ``castore cat`` (the git diff driver) and ``castore export`` print
values as JSON. What JSON lacks is written as a one-key object whose key names the type,
so nothing is lost or confused with a string:

=========================== ==============================================
``b"hi"``                   ``{"$bytes": "hi"}`` (valid UTF-8), else ``{"$base64": "…"}``
``datetime``/``date``/``time`` ``{"$datetime": "2025-10-22T09:30:00+02:00"}`` …
``timedelta``               ``{"$timedelta": [days, seconds, microseconds]}``
``(1, 2)`` / sets           ``{"$tuple": [1, 2]}`` / ``{"$set": […]}`` / ``{"$frozenset": […]}``
non-string dict keys        ``{"$map": [[key, value], …]}``
NaN, ±infinity              ``{"$float": "nan"}``
=========================== ==============================================

:func:`from_json_view` reverses it exactly: export then import gives the same blobs.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from castore._storage.codec import pack_value

TAGS: Final = frozenset(
    {
        "$bytes",
        "$base64",
        "$datetime",
        "$date",
        "$time",
        "$timedelta",
        "$tuple",
        "$set",
        "$frozenset",
        "$map",
        "$float",
    }
)


#: How deep a view nests. json.dumps and Python's stack give out near 1,000 levels;
#: castore's own values (LLM responses) stay far shallower.
MAX_VIEW_DEPTH: Final = 200
#: The longest integer a view writes as a number: Python's int-to-string limit.
MAX_INT_DIGITS: Final = 4300


class ViewTooLargeError(ValueError):
    """A value whose exact JSON view cannot be written (too deep, or an int too long)."""


def to_json_view(value: Any, *, exact: bool = False) -> Any:
    """A JSON-serializable form of a stored value (see the module docstring).

    A part nested deeper than :data:`MAX_VIEW_DEPTH` or an integer of more than
    :data:`MAX_INT_DIGITS` digits is shown as ``{"$not_shown": why}`` (for ``show`` and
    ``cat``); with ``exact`` (for ``export``) it raises :class:`ViewTooLargeError`.
    """
    return _view(value, 0, exact)


def _too_large(why: str, exact: bool) -> Any:
    if exact:
        raise ViewTooLargeError(why)
    return {"$not_shown": why}


#: Integers this far from zero are always within MAX_INT_DIGITS: their view is themselves.
_SMALL_INT: Final = 2**63
_SELF_VIEWED: Final = frozenset({str, bool, type(None)})


def _is_plain(value: Any) -> bool:
    """True for a value that is its own view: text, None, a bool, a finite float or a
    small int (exact types: a subclass takes the full walk)."""
    kind = type(value)
    if kind in _SELF_VIEWED:
        return True
    if kind is float:
        return math.isfinite(value)
    return kind is int and -_SMALL_INT < value < _SMALL_INT


def _view(value: Any, depth: int, exact: bool) -> Any:
    if depth > MAX_VIEW_DEPTH:
        return _too_large(f"nested deeper than {MAX_VIEW_DEPTH} levels", exact)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_DIGITS * 3:  # 3 bits a digit: a cheap lower bound
            digits = int(value.bit_length() * 0.30103) + 1
            if digits > MAX_INT_DIGITS:
                return _too_large(f"an integer of about {digits} digits", exact)
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, bytes):
        try:
            return {"$bytes": value.decode("utf-8")}
        except UnicodeDecodeError:
            return {"$base64": base64.b64encode(value).decode("ascii")}
    deeper = depth + 1
    if isinstance(value, list):
        if all(map(_is_plain, value)):  # an embedding's floats, a list of texts: one pass
            return list(value)
        return [_view(item, deeper, exact) for item in value]
    if isinstance(value, Mapping):
        if all(isinstance(key, str) for key in value) and not (
            len(value) == 1 and next(iter(value)) in TAGS
        ):
            if all(map(_is_plain, value.values())):
                return dict(value)
            return {key: _view(item, deeper, exact) for key, item in value.items()}
        pairs = [[_view(k, deeper, exact), _view(v, deeper, exact)] for k, v in value.items()]
        return {"$map": pairs}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, tuple):
        return {"$tuple": [_view(item, deeper, exact) for item in value]}
    if isinstance(value, set | frozenset):
        tag = "$frozenset" if isinstance(value, frozenset) else "$set"
        return {tag: [_view(item, deeper, exact) for item in sorted(value, key=pack_value)]}
    raise TypeError(f"{type(value).__qualname__} is not a castore value")


def from_json_view(data: Any) -> Any:
    """The stored value a JSON view stands for."""
    if isinstance(data, list):
        return [from_json_view(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        tag, payload = next(iter(data.items()))
        if tag in TAGS:
            return _from_tag(tag, payload)
    return {key: from_json_view(item) for key, item in data.items()}


class ViewFormatError(ValueError):
    """A tagged view whose payload is not what castore writes for that tag."""


def _from_tag(tag: str, payload: Any) -> Any:
    """Each tag's payload is checked for the type its view writes: an export is a file a
    person may have edited, and a wrong payload must fail, not import as something else
    (``{"$base64": "!!!"}`` once imported as ``b''``)."""
    if tag in _TEXT_TAGS:
        if not isinstance(payload, str):
            raise ViewFormatError(f"{tag} must hold a string, found {payload!r:.60}")
        return _TEXT_TAGS[tag](payload)
    if tag == "$timedelta":
        if not (
            isinstance(payload, list)
            and len(payload) == 3
            and all(type(part) is int for part in payload)
        ):
            raise ViewFormatError(
                f"$timedelta must hold [days, seconds, microseconds], found {payload!r:.60}"
            )
        days, seconds, microseconds = payload
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if tag == "$float":
        if payload not in ("nan", "inf", "-inf"):
            raise ViewFormatError(f"$float must hold 'nan', 'inf' or '-inf', found {payload!r:.60}")
        return float(payload)
    if not isinstance(payload, list):
        raise ViewFormatError(f"{tag} must hold a list, found {payload!r:.60}")
    items = [from_json_view(item) for item in payload]
    if tag == "$tuple":
        return tuple(items)
    if tag == "$set":
        return set(items)
    if tag == "$frozenset":
        return frozenset(items)
    if not all(isinstance(item, list) and len(item) == 2 for item in items):
        raise ViewFormatError("$map must hold [key, value] pairs")
    return dict(items)  # $map: each key was the view of a hashable value


def _base64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


_TEXT_TAGS: Final[dict[str, Callable[[str], Any]]] = {
    "$bytes": lambda text: text.encode("utf-8"),
    "$base64": _base64,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
}
