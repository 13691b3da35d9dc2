"""How new blobs are compressed, and the zstd dictionaries any frame may name.

The settings come from ``castore.json`` (``config.py``): a zstd level and, once the store
has one, an active dictionary. A dictionary is itself a blob, so loading one reads it
through the verified read path; every dictionary the store ever used stays listed, so a
frame compressed with an old one reads back forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from castore._storage.config import ConfigFile
from castore._storage.frames import Compressor, FrameError
from castore._storage.layout import CONFIG_NAME
from castore.errors import StoreError


class Compression:
    """The store's compressor for new blobs, and its dictionaries by id."""

    def __init__(self, config: ConfigFile, read_value: Callable[[str], Any]) -> None:
        self._config = config
        self._read_value = read_value
        self._compressor: tuple[int, Compressor] | None = None

    def compress(self, packed: bytes) -> bytes:
        return self.compressor().compress(packed)

    def compressor(self) -> Compressor:
        """The compressor castore.json asks for (rebuilt when castore.json changes)."""
        generation = self._config.generation
        if self._compressor is None or self._compressor[0] != generation:
            config = self._config.current
            dictionary = None
            if config.dictionary is not None:
                dictionary = self.load_dictionary(config.dictionary)
            self._compressor = (generation, Compressor(config.level, dictionary))
        return self._compressor[1]

    def dictionary_bytes(self, dictionary_id: int) -> bytes:
        """The zstd dictionary with this id, as castore.json lists it."""
        try:
            return self.load_dictionary(dictionary_id)
        except FrameError as error:
            raise StoreError(str(error)) from None

    def load_dictionary(self, dictionary_id: int) -> bytes:
        """As :meth:`dictionary_bytes`, raising FrameError: what a decompressor asks."""
        blob = self._config.current.dictionaries.get(dictionary_id)
        if blob is None:
            raise FrameError(
                f"it needs zstd dictionary {dictionary_id}, which {CONFIG_NAME} does not list"
            )
        value = self._read_value(blob)
        if not isinstance(value, bytes):
            raise FrameError(f"dictionary blob {blob[:16]}… does not hold bytes")
        return value
