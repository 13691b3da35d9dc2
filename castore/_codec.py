"""Value <-> bytes: msgpack packing rules, zstd frames, and the blake3 digest.

Nothing here touches the file system. The packing rules are part of castore's on-disk
format (docs/concepts.md lists them): msgpack's native types round-trip exactly, a few
common Python types ride in msgpack extension types, and anything else is refused rather
than pickled. Packing is deterministic (same value, same bytes), which is what makes
content addressing and git-lfs work without churn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

import blake3
import msgpack
import zstandard

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

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
# zstd's ZSTD_CONTENTSIZE_ERROR and ZSTD_CONTENTSIZE_UNKNOWN (2**64 - 1) as frame sizes.
_CONTENTSIZE_ERROR: Final = 2**64 - 2
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
        type_name, location = _find_unpackable(value, "")
        if not type_name:  # pragma: no cover - defensive: msgpack failed for another reason
            type_name = f"{type(value).__qualname__} ({error})"
        raise EncodeError(type_name, location) from None
    return packed


def _find_unpackable(value: Any, location: str) -> tuple[str, str]:
    """Walk a value that failed to pack and say which part msgpack could not take."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "str with unpaired surrogates", location
        return "", ""
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _find_unpackable(key, f"{location}[key {key!r}]")
            if found[0]:
                return found
            found = _find_unpackable(item, f"{location}[{key!r}]")
            if found[0]:
                return found
        return "", ""
    if isinstance(value, list | tuple | set | frozenset):
        for number, item in enumerate(value):
            found = _find_unpackable(item, f"{location}[{number}]")
            if found[0]:
                return found
        return "", ""
    try:
        msgpack.packb(value, **_PACKER_OPTIONS)
    except (TypeError, ValueError, OverflowError):
        return type(value).__qualname__, location
    return "", ""


# --- unpacking -----------------------------------------------------------------------


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_DATETIME:
        return dt.datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return dt.date.fromisoformat(data.decode())
    if code == EXT_TIME:
        return dt.time.fromisoformat(data.decode())
    if code == EXT_TIMEDELTA:
        days, seconds, microseconds = _unpack(data)
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if code == EXT_TUPLE:
        return tuple(_unpack(data))
    if code == EXT_SET:
        return set(_unpack(data))
    if code == EXT_FROZENSET:
        return frozenset(_unpack(data))
    raise DecodeError(
        f"unknown msgpack extension type {code}: written by a newer castore? Upgrade castore"
    )


def _unpack(packed: bytes) -> Any:
    # unpackb bounds every str/bin/array/map length by the buffer size, so a crafted header
    # claiming billions of items fails at once instead of allocating.
    return msgpack.unpackb(packed, ext_hook=_ext_hook, strict_map_key=False, raw=False)


def unpack_value(packed: bytes) -> Any:
    """Unpack bytes made by :func:`pack_value`; any malformation raises :class:`DecodeError`."""
    try:
        return _unpack(packed)
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as error:
        raise DecodeError(f"not valid castore msgpack ({type(error).__name__}: {error})") from None


# --- zstd ----------------------------------------------------------------------------


class Compressor:
    """zstd compression with fixed settings, so equal input always gives equal frames."""

    def __init__(self, level: int, dictionary: bytes | None = None) -> None:
        self.level = level
        zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self._compressor = zstandard.ZstdCompressor(
            level=level,
            dict_data=zdict,
            write_checksum=False,  # the blake3 digest already checks the content
            write_content_size=True,  # lets readers bound the output before decompressing
            write_dict_id=True,  # lets readers find the dictionary a blob needs
            threads=0,
        )

    def compress(self, packed: bytes) -> bytes:
        return self._compressor.compress(packed)

    def compress_many(self, items: list[bytes]) -> list[bytes]:
        """Compress many values on every core; each frame is byte-identical to
        :meth:`compress` of that value (zstd compresses each item on its own)."""
        if not items:
            return []
        inputs: list[bytes | bytearray | memoryview] = list(items)
        frames = self._compressor.multi_compress_to_buffer(inputs, threads=-1)
        return [frames[number].tobytes() for number in range(len(items))]


class FrameError(ValueError):
    """Bytes that are not a single zstd frame castore can read."""


class FrameTooLargeError(FrameError):
    def __init__(self, size: int | None) -> None:
        super().__init__(f"decompressed size {size} over the limit")
        self.size = size


class Decompressor:
    """Bounded zstd decompression that finds each frame's dictionary by its id."""

    def __init__(self, max_output: int, load_dictionary: Callable[[int], bytes]) -> None:
        self.max_output = max_output
        self._load_dictionary = load_dictionary
        self._by_dictionary: dict[int, zstandard.ZstdDecompressor] = {}

    def _decompressor_for(self, dictionary_id: int) -> zstandard.ZstdDecompressor:
        found = self._by_dictionary.get(dictionary_id)
        if found is None:
            zdict = None
            if dictionary_id:
                zdict = zstandard.ZstdCompressionDict(self._load_dictionary(dictionary_id))
            found = zstandard.ZstdDecompressor(dict_data=zdict)
            self._by_dictionary[dictionary_id] = found
        return found

    def decompress(self, frame: bytes, *, strict: bool = False) -> bytes:
        """Decompress one frame. Bytes after it cannot change the result (the caller
        checks the digest), so only ``strict`` (castore verify) rejects them: finding the
        frame's end scans all of it, which costs replays 10-20%."""
        try:  # one header parse gives the dictionary id and the declared size
            header = zstandard.get_frame_parameters(frame)
        except zstandard.ZstdError as error:
            raise FrameError(f"unreadable zstd frame header ({error})") from None
        dictionary_id = int(header.dict_id)
        size = int(header.content_size)
        declared = None if size >= _CONTENTSIZE_ERROR else size  # unknown (or error): None
        if declared is not None and declared > self.max_output:
            raise FrameTooLargeError(declared)
        decompressor = self._decompressor_for(dictionary_id)
        try:
            if declared is None:
                return _decompress_unknown_size(decompressor, frame, self.max_output)
            return decompressor.decompress(frame, allow_extra_data=not strict)
        except zstandard.ZstdError as error:
            raise FrameError(f"zstd could not decompress it ({error})") from None


def _decompress_unknown_size(
    decompressor: zstandard.ZstdDecompressor, frame: bytes, limit: int
) -> bytes:
    """Stream-decompress a frame without a declared size, stopping once past the limit."""
    reader = decompressor.stream_reader(frame, read_across_frames=False)
    chunks: list[bytes] = []
    total = 0
    while chunk := reader.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise FrameTooLargeError(None)
        chunks.append(chunk)
    return b"".join(chunks)
