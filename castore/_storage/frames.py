"""zstd frames: how a blob's msgpack bytes are compressed, and read back within bounds.

Compression settings are fixed (equal input, equal frames), which is what keeps git-lfs
free of churn. Decompression is bounded: a frame that declares, or turns out to hold,
more than the store's size limit is refused before it can exhaust memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import zstandard

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
# zstd's ZSTD_CONTENTSIZE_ERROR and ZSTD_CONTENTSIZE_UNKNOWN (2**64 - 1) as frame sizes.
_CONTENTSIZE_ERROR: Final = 2**64 - 2


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
        decompressor = self._by_dictionary.get(dictionary_id) or self._decompressor_for(
            dictionary_id
        )
        try:
            if declared is None:
                return _decompress_unknown_size(decompressor, frame, self.max_output)
            return decompressor.decompress(frame, allow_extra_data=not strict)
        except zstandard.ZstdError as error:
            raise FrameError(f"zstd could not decompress it ({error})") from None


def _decompress_unknown_size(
    decompressor: zstandard.ZstdDecompressor, frame: bytes, limit: int
) -> bytes:
    """Decompress a frame that does not declare its size, within the limit, in one copy.

    A first pass streams through the frame to learn its size, keeping one chunk at a time
    and stopping once past the limit; the second decompresses into a buffer of exactly
    that size. Joining streamed chunks instead would peak at twice the value. castore
    always declares the size, so only foreign or crafted frames pay the second pass.
    """
    reader = decompressor.stream_reader(frame, read_across_frames=False)
    size = 0
    while chunk := reader.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise FrameTooLargeError(None)
    if size == 0:
        return b""
    return decompressor.decompress(frame, max_output_size=size, allow_extra_data=True)
