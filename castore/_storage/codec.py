"""Value <-> bytes: msgpack packing rules and the blake3 digest.

Nothing here touches the file system; zstd frames are ``frames.py``'s. The packing rules
are part of castore's on-disk format (docs/concepts.md lists them): msgpack's native types
round-trip exactly, a few common Python types ride in msgpack extension types, and
anything else is refused rather than pickled. Packing is deterministic (same value, same
bytes), which is what makes content addressing and git-lfs work without churn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, cast

import blake3
import msgpack

#: Version of the value encoding below; stored with every index entry.
VALUE_FORMAT: Final = 1

# Extension type codes. Never renumber: they are on disk in users' repositories.
EXT_BIGINT: Final = 1  # int outside msgpack's 64-bit range: signed big-endian bytes
EXT_DATETIME: Final = 2  # datetime.isoformat()
EXT_DATE: Final = 3  # date.isoformat()
EXT_TUPLE: Final = 4  # packed list of the items
EXT_SET: Final = 5  # packed list of the items, sorted by their packed bytes
EXT_FROZENSET: Final = 6  # as EXT_SET
EXT_TIME: Final = 7  # time.isoformat()
EXT_TIMEDELTA: Final = 8  # packed [days, seconds, microseconds]

INT64_MIN: Final = -(2**63)
UINT64_MAX: Final = 2**64 - 1


class EncodeError(TypeError):
    """Raised by :func:`pack_value` with the offending type and where it sits in the value."""

    def __init__(self, type_name: str, location: str) -> None:
        super().__init__(f"cannot encode {type_name} at {location or 'top level'}")
        self.type_name = type_name
        self.location = location


class DecodeError(ValueError):
    """Raised when bytes are not a valid castore value (bad msgpack, unknown extension)."""


def digest(packed: bytes) -> str:
    """The 64-hex blake3 digest that names a blob: computed over the *uncompressed* bytes."""
    return blake3.blake3(packed).hexdigest()


# --- packing -------------------------------------------------------------------------


def _pack_nested(value: Any) -> bytes:
    # A fresh Packer: msgpack's Packer is not reentrant from inside its own default hook.
    packed: bytes = msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)
    return packed


def _default(obj: Any) -> Any:
    """msgpack's hook for everything that is not exactly a native type."""
    if isinstance(obj, bool):  # pragma: no cover - bool is native; kept for subclass safety
        return bool(obj)
    if isinstance(obj, int):  # big ints and int subclasses (IntEnum, IntFlag)
        number = int(obj)
        if INT64_MIN <= number <= UINT64_MAX:
            return number
        length = (number.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIGINT, number.to_bytes(length, "big", signed=True))
    if isinstance(obj, dt.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, dt.date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, dt.time):
        return msgpack.ExtType(EXT_TIME, obj.isoformat().encode())
    if isinstance(obj, dt.timedelta):
        return msgpack.ExtType(
            EXT_TIMEDELTA, _pack_nested([obj.days, obj.seconds, obj.microseconds])
        )
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, _pack_nested(list(obj)))
    if isinstance(obj, set | frozenset):
        # Sets have no order of their own; sorting the packed items makes the bytes (and
        # therefore the digest) independent of PYTHONHASHSEED.
        items = sorted(_pack_nested(item) for item in obj)
        code = EXT_FROZENSET if isinstance(obj, frozenset) else EXT_SET
        return msgpack.ExtType(code, _pack_array_of_packed(items))
    if isinstance(obj, Mapping):  # dict subclasses: OrderedDict, defaultdict, Counter
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, str):  # StrEnum and other str subclasses
        return str(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, bytearray | memoryview):
        return bytes(obj)
    raise TypeError(type(obj).__qualname__)


def _pack_array_of_packed(items: list[bytes]) -> bytes:
    """A msgpack array header followed by already-packed items."""
    count = len(items)
    if count < 16:
        header = bytes([0x90 | count])
    elif count < 2**16:
        header = b"\xdc" + count.to_bytes(2, "big")
    else:
        header = b"\xdd" + count.to_bytes(4, "big")
    return header + b"".join(items)


_PACKER_OPTIONS: Final = {"default": _default, "strict_types": True, "use_bin_type": True}


def pack_value(value: Any) -> bytes:
    """Pack a value into castore's msgpack form; :class:`EncodeError` names what failed."""
    try:
        packed: bytes = msgpack.packb(value, **_PACKER_OPTIONS)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError) as error:
        # Walk the value that failed to pack to say which part msgpack could not take.
        found = first_offender(value, _unpackable_leaf, _unpackable_key, PACKED_SEQUENCES)
        location, type_name = found or ("", f"{type(value).__qualname__} ({error})")
        raise EncodeError(type_name, location) from None
    return packed


def _unpackable_key(key: Any) -> str:
    found = first_offender(key, _unpackable_leaf, _unpackable_key, PACKED_SEQUENCES)
    return found[1] if found else ""


def _unpackable_leaf(value: Any) -> str:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "str with unpaired surrogates"
        return ""
    try:
        msgpack.packb(value, **_PACKER_OPTIONS)
    except (TypeError, ValueError, OverflowError):
        return type(value).__qualname__
    return ""


#: The sequences a packed value may hold (JSON metadata holds only lists and tuples).
PACKED_SEQUENCES: Final = (list, tuple, set, frozenset)


def first_offender(
    value: Any,
    leaf_problem: Callable[[Any], str],
    key_problem: Callable[[Any], str],
    sequences: tuple[type, ...],
) -> tuple[str, str] | None:
    """(where, what) of the first part of ``value`` that cannot be stored, or None.

    Walks mappings (their keys through ``key_problem``) and ``sequences``; every other
    object is a leaf for ``leaf_problem``, which names what is wrong with it or returns "".
    One walker serves the msgpack check of values and the JSON check of metadata, so both
    point at the offending part the same way: ``['choices'][0][key 3]``.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = key_problem(key)
            if problem:
                return f"[key {key!r}]", problem
            found = first_offender(item, leaf_problem, key_problem, sequences)
            if found:
                return f"[{key!r}]{found[0]}", found[1]
        return None
    if isinstance(value, sequences):
        for number, item in enumerate(cast("Iterable[Any]", value)):
            found = first_offender(item, leaf_problem, key_problem, sequences)
            if found:
                return f"[{number}]{found[0]}", found[1]
        return None
    problem = leaf_problem(value)
    return ("", problem) if problem else None


# --- unpacking -----------------------------------------------------------------------


#: How deep castore's container extensions (tuple, set, frozenset, timedelta) may nest.
#: Each level is a fresh msgpack unpacker on the C stack (about 40 KB), so without a
#: bound a crafted blob nested 200 deep crashes the process; castore itself never writes
#: more than a few levels (a tuple of tuples in a set).
MAX_EXT_DEPTH: Final = 32


def _extension(code: int, data: bytes, depth: int, budget: _ObjectBudget | None) -> Any:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_DATETIME:
        return dt.datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return dt.date.fromisoformat(data.decode())
    if code == EXT_TIME:
        return dt.time.fromisoformat(data.decode())
    if code in _CONTAINERS:
        if depth >= MAX_EXT_DEPTH:
            raise DecodeError(
                f"its tuples, sets and timedeltas nest more than {MAX_EXT_DEPTH} deep, "
                "which castore never writes"
            )
        items = _unpack(data, depth + 1, budget)
        if not isinstance(items, list):
            raise DecodeError(f"extension type {code} does not hold an array")
        if code == EXT_TIMEDELTA:
            days, seconds, microseconds = items
            return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        return _CONTAINERS[code](items)
    raise DecodeError(
        f"unknown msgpack extension type {code}: written by a newer castore? Upgrade castore"
    )


_CONTAINERS: Final[dict[int, Callable[[list[Any]], Any]]] = {
    EXT_TUPLE: tuple,
    EXT_SET: set,
    EXT_FROZENSET: frozenset,
    EXT_TIMEDELTA: list,  # built by _extension itself
}


#: Values whose msgpack is at most this long are unpacked without counting objects: even
#: if every byte were an empty map (the worst case, about 72 bytes of Python objects per
#: byte) the value would take under 80 MB.
COUNT_OBJECTS_ABOVE: Final = 1 << 20

#: How many objects (container items, counted as their containers complete) a value may
#: hold. Without it a 2 KB zstd frame of 20 MB of empty maps unpacks to 1.4 GB; with it a
#: hostile value costs at most a few hundred MB before it is refused. Recorded API
#: responses hold far fewer: a 1,000 x 1,536 embedding response is 1.5 million.
MAX_VALUE_OBJECTS: Final = 4_000_000


class _ObjectBudget:
    """Counts a value's objects as msgpack completes each container, and stops the unpack
    once the count passes :data:`MAX_VALUE_OBJECTS`. msgpack allocates an array or map of
    the length its header claims, so that length is bounded up front as well."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_VALUE_OBJECTS

    def spend(self, count: int) -> None:
        self.left -= count + 1
        if self.left < 0:
            raise DecodeError(
                f"it holds more than {MAX_VALUE_OBJECTS:,} objects, which castore refuses "
                "to unpack (a small blob must not cost gigabytes of memory)"
            )

    def list_hook(self, items: list[Any]) -> list[Any]:
        self.spend(len(items))
        return items

    def map_hook(self, pairs: dict[Any, Any]) -> dict[Any, Any]:
        self.spend(2 * len(pairs))
        return pairs


#: Options of every unpack: non-str map keys allowed (castore packs int and tuple keys),
#: str for str, and msgpack's own timestamp (-1) as an aware datetime.
_UNPACKING: Final[dict[str, Any]] = {"strict_map_key": False, "raw": False, "timestamp": 3}


def _unpack(packed: bytes, depth: int = 0, budget: _ObjectBudget | None = None) -> Any:
    # unpackb bounds every str/bin/array/map length by the buffer size, so a crafted header
    # claiming billions of items fails at once instead of allocating. msgpack's own
    # timestamp extension (-1), which castore never writes, reads as an aware UTC datetime.
    if budget is None and len(packed) > COUNT_OBJECTS_ABOVE:
        budget = _ObjectBudget()
    if budget is None:
        return msgpack.unpackb(
            packed, ext_hook=lambda code, data: _extension(code, data, depth, None), **_UNPACKING
        )
    try:
        return msgpack.unpackb(
            packed,
            ext_hook=lambda code, data: _extension(code, data, depth, budget),
            **_UNPACKING,
            list_hook=budget.list_hook,
            object_hook=budget.map_hook,
            max_array_len=MAX_VALUE_OBJECTS,
            max_map_len=MAX_VALUE_OBJECTS // 2,
        )
    except ValueError as error:  # msgpack's "N exceeds max_array_len(M)"
        if "exceeds max_" not in str(error):
            raise
        budget.spend(MAX_VALUE_OBJECTS)
        raise  # pragma: no cover - spend() has raised


def _top_level_extension(code: int, data: bytes) -> Any:
    return _extension(code, data, 0, None)


def unpack_value(packed: bytes) -> Any:
    """Unpack bytes made by :func:`pack_value`; any malformation raises :class:`DecodeError`."""
    try:
        if len(packed) <= COUNT_OBJECTS_ABOVE:  # the replay hot path: one call, no closure
            # The options spelled out: expanding **_UNPACKING builds a dict per call, which
            # costs a replay a quarter of a microsecond.
            return msgpack.unpackb(
                packed,
                ext_hook=_top_level_extension,
                strict_map_key=False,
                raw=False,
                timestamp=3,
            )
        return _unpack(packed)
    except DecodeError:
        raise
    except (
        ValueError,
        TypeError,
        OverflowError,
        msgpack.UnpackException,
        RecursionError,
    ) as error:
        raise DecodeError(f"not valid castore msgpack ({type(error).__name__}: {error})") from None
