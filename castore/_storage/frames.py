"""zstd frames: how a blob's msgpack bytes are compressed, and read back within bounds.

Compression settings are fixed (equal input, equal frames), which is what keeps git-lfs
free of churn. Decompression is bounded: a frame that declares, or turns out to hold,
more than the store's size limit is refused before it can exhaust memory.

python-zstandard's compressor and decompressor objects keep native state that two
threads must not use at once: shared, concurrent replays from a thread pool read
"corrupt" blobs (the digest check caught wrong output) or crashed the process in
``realloc()``. Each thread therefore gets its own, made on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

import blake3
import zstandard

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
# zstd's ZSTD_CONTENTSIZE_ERROR and ZSTD_CONTENTSIZE_UNKNOWN (2**64 - 1) as frame sizes.
_CONTENTSIZE_ERROR: Final = 2**64 - 2
_frame_parameters: Final = zstandard.get_frame_parameters
#: Above this declared size, or for a frame that declares none, a frame's content is
#: hashed as it streams, a chunk at a time, before it is decompressed whole: a blob whose
#: digest will not match is refused holding one chunk, never the whole value.
STREAM_CHECK_BYTES: Final = 4 * 1024 * 1024
_CHUNK: Final = 1 << 20


class Compressor:
    """zstd compression with fixed settings, so equal input always gives equal frames."""

    def __init__(self, level: int, dictionary: bytes | None = None) -> None:
        self.level = level
        self._dictionary = dictionary
        self._local = threading.local()

    @property
    def _compressor(self) -> zstandard.ZstdCompressor:
        """This thread's compressor (see the module docstring)."""
        found: zstandard.ZstdCompressor | None = getattr(self._local, "compressor", None)
        if found is None:
            found = self._local.compressor = zstandard.ZstdCompressor(
                level=self.level,
                # A dictionary object per thread too: zstd prepares it lazily, on first use.
                dict_data=zstandard.ZstdCompressionDict(self._dictionary)
                if self._dictionary
                else None,
                write_checksum=False,  # the blake3 digest already checks the content
                write_content_size=True,  # lets readers bound the output before decompressing
                write_dict_id=True,  # lets readers find the dictionary a blob needs
                threads=0,
            )
        return found

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


class FrameDigestError(FrameError):
    """The frame's content does not hash to the digest it is stored under."""

    def __init__(self, actual: str) -> None:
        super().__init__(f"its content hashes to {actual[:16]}…, not to its name")
        self.actual = actual


class FrameTooLargeError(FrameError):
    def __init__(self, size: int | None) -> None:
        super().__init__(f"decompressed size {size} over the limit")
        self.size = size


class _ThreadDecompressors(threading.local):
    """Each thread's decompressors by dictionary id (see the module docstring)."""

    def __init__(self) -> None:
        self.by_dictionary: dict[int, zstandard.ZstdDecompressor] = {}


class Decompressor:
    """Bounded zstd decompression that finds each frame's dictionary by its id."""

    def __init__(self, max_output: int, load_dictionary: Callable[[int], bytes]) -> None:
        self.max_output = max_output
        self._load_dictionary = load_dictionary
        self._dictionaries: dict[int, bytes] = {}
        self._local = _ThreadDecompressors()

    def _decompressor_for(self, dictionary_id: int) -> zstandard.ZstdDecompressor:
        by_dictionary = self._local.by_dictionary
        found = by_dictionary.get(dictionary_id)
        if found is None:
            zdict = None
            if dictionary_id:
                data = self._dictionaries.get(dictionary_id)
                if data is None:
                    data = self._dictionaries[dictionary_id] = self._load_dictionary(dictionary_id)
                # One object per thread: zstd prepares a dictionary lazily, on first use.
                zdict = zstandard.ZstdCompressionDict(data)
            found = zstandard.ZstdDecompressor(dict_data=zdict)
            by_dictionary[dictionary_id] = found
        return found

    def decompress(self, frame: bytes, digest: str | None = None, strict: bool = False) -> bytes:
        """Decompress one frame. Bytes after it cannot change the result (the caller
        checks the digest), so only ``strict`` (castore verify) rejects them: finding the
        frame's end scans all of it, which costs replays 10-20%. With ``digest``, a large
        frame (or one of unknown size) must stream to that blake3 digest before it is
        decompressed whole (:data:`STREAM_CHECK_BYTES`); small ones are checked by the
        caller, after, as a replay always does. Positional arguments: a keyword costs
        0.2 µs here, on the replay path."""
        try:  # one header parse gives the dictionary id and the declared size
            header = _frame_parameters(frame)
        except zstandard.ZstdError as error:
            raise FrameError(f"unreadable zstd frame header ({error})") from None
        size = header.content_size
        dictionary_id = header.dict_id
        # This thread's decompressor: one attribute and one dict lookup on the replay path.
        decompressor = self._local.by_dictionary.get(dictionary_id) or self._decompressor_for(
            dictionary_id
        )
        try:
            if size <= self.max_output:  # declared and within bounds: the replay path
                if digest is not None and size > STREAM_CHECK_BYTES:
                    _stream_digest(decompressor, frame, self.max_output, digest)
                if strict:
                    return decompressor.decompress(frame, allow_extra_data=False)
                return decompressor.decompress(frame)  # a keyword costs 0.2 µs here
            if size < _CONTENTSIZE_ERROR:
                raise FrameTooLargeError(size)
            return _decompress_unknown_size(decompressor, frame, self.max_output, digest)
        except zstandard.ZstdError as error:
            raise FrameError(f"zstd could not decompress it ({error})") from None


def _stream_digest(
    decompressor: zstandard.ZstdDecompressor, frame: bytes, limit: int, digest: str | None
) -> int:
    """Stream through the frame a chunk at a time: its content's size, refused once past
    ``limit``, and (with ``digest``) refused if it does not hash to it."""
    reader = decompressor.stream_reader(frame, read_across_frames=False)
    hasher = blake3.blake3() if digest is not None else None
    size = 0
    while chunk := reader.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise FrameTooLargeError(None)
        if hasher is not None:
            hasher.update(chunk)
    if hasher is not None and (actual := hasher.hexdigest()) != digest:
        raise FrameDigestError(actual)
    return size


def _decompress_unknown_size(
    decompressor: zstandard.ZstdDecompressor, frame: bytes, limit: int, digest: str | None
) -> bytes:
    """Decompress a frame that does not declare its size, within the limit, in one copy.

    A first pass streams through the frame to learn its size (and check its digest),
    keeping one chunk at a time and stopping once past the limit; the second decompresses
    into a buffer of exactly that size. Joining streamed chunks instead would peak at
    twice the value. castore always declares the size, so only foreign or crafted frames
    pay the second pass.
    """
    size = _stream_digest(decompressor, frame, limit, digest)
    if size == 0:
        return b""
    return decompressor.decompress(frame, max_output_size=size, allow_extra_data=True)
