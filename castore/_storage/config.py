"""The store's own settings file, ``castore.json``, at the top of a store.

It records how new blobs are compressed (zstd level, active dictionary) and every zstd
dictionary the store has ever used, by dictionary id, so any blob, old or new, can always
be read back: a blob's zstd frame names its dictionary id, and this file maps the id to
the dictionary, itself a content-addressed blob.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from castore._storage.json_documents import parse_document
from castore._storage.layout import (
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    check_format_version,
    is_digest,
)
from castore._storage.safe_files import FileRefused, read_store_file
from castore.errors import IndexFormatError

#: The store layout's version. 2 adds ``packs/``; a store is written as 2 once it has
#: packs, so an older castore refuses it by name instead of finding its blobs missing.
STORE_FORMAT: Final = 2
LOOSE_ONLY_FORMAT: Final = 1
#: zstd level for new blobs; docs/benchmarks.md shows the measurements behind it.
DEFAULT_LEVEL: Final = 19
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 22


@dataclass(frozen=True, slots=True)
class StoreConfig:
    level: int = DEFAULT_LEVEL
    """zstd compression level for new blobs."""
    dictionary: int | None = None
    """Id of the zstd dictionary new blobs are compressed with, if any."""
    dictionaries: Mapping[int, str] = field(default_factory=dict)
    """Every dictionary id this store has used -> digest of the blob holding it."""
    format: int = LOOSE_ONLY_FORMAT
    """The layout version this store needs: 1 for loose blobs only, 2 once it has packs."""

    def packed(self) -> StoreConfig:
        """This configuration for a store that holds packs."""
        return dataclasses.replace(self, format=max(self.format, STORE_FORMAT))

    def to_json(self) -> dict[str, Any]:
        return {
            "castore_store": self.format,
            "compression": {"codec": "zstd", "level": self.level, "dictionary": self.dictionary},
            "dictionaries": {str(k): v for k, v in sorted(self.dictionaries.items())},
        }


def dump_config(config: StoreConfig) -> bytes:
    return (json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n").encode()


def load_config(root: Path) -> StoreConfig:
    """Read ``castore.json``; a store without one uses the defaults."""
    path = root / CONFIG_NAME
    try:
        raw = read_store_file(path, MAX_CONFIG_BYTES)
    except FileRefused as refused:
        raise IndexFormatError(path, refused.reason) from None
    if raw is None:
        return StoreConfig()
    document = parse_document(raw, path)
    version = check_format_version(
        document,
        "castore_store",
        STORE_FORMAT,
        path,
        missing="not a castore store file (no 'castore_store' field)",
    )
    try:
        compression = document.get("compression", {})
        level = int(compression.get("level", DEFAULT_LEVEL))
        active = compression.get("dictionary")
        dictionaries = {int(k): str(v) for k, v in document.get("dictionaries", {}).items()}
    except (AttributeError, TypeError, ValueError) as error:
        raise IndexFormatError(path, f"bad 'compression' or 'dictionaries' ({error})") from None
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise IndexFormatError(path, f"zstd level {level} is outside {MIN_LEVEL}..{MAX_LEVEL}")
    for dictionary_id, blob in dictionaries.items():
        if not 0 < dictionary_id < 2**32 or not is_digest(blob):
            raise IndexFormatError(
                path,
                f"dictionary {dictionary_id}: expected an id in 1..2^32-1 naming a 64-hex "
                f"blob digest, found {blob[:80]!r}",
            )
    if active is not None and int(active) not in dictionaries:
        raise IndexFormatError(path, f"active dictionary {active} is not in 'dictionaries'")
    return StoreConfig(
        level=level,
        dictionary=None if active is None else int(active),
        dictionaries=dictionaries,
        format=max(version, LOOSE_ONLY_FORMAT),
    )
