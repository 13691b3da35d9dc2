"""The ini options about the store itself: its value size limit and automatic packing.

Registered from ``pytest_plugin.py`` in one call, and read once per session into plain
data (:class:`StorageSettings`), so the session only asks what to do.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import pytest

from castore._storage.value_limit import parse_size

#: Automatic packing runs after a session that recorded, once the loose blobs pass
#: either threshold (git's ``gc --auto`` counts loose objects the same way). A hundred
#: values are a hundred LFS objects, or remote requests, per clone; 2 MiB is a quarter
#: of a full pack.
DEFAULT_PACK_AFTER_BLOBS: Final = 100
DEFAULT_PACK_AFTER_BYTES: Final = 2 * 2**20


class StorageSettings(NamedTuple):
    max_value_bytes: int | str | None
    """The ini option's value, if set (``value_limit.max_value_bytes`` decides)."""
    auto_pack: bool
    pack_after_blobs: int
    pack_after_bytes: int


def add_ini_options(parser: pytest.Parser) -> None:
    parser.addini(
        "castore_max_value_bytes",
        "largest value castore reads or records, e.g. 128MiB (default 64MiB, or "
        "CASTORE_MAX_VALUE_BYTES): the guard against decompression bombs",
    )
    parser.addini(
        "castore_auto_pack",
        "after a session that recorded, pack the loose blobs once they pass "
        "castore_auto_pack_blobs or castore_auto_pack_bytes (default true)",
        type="bool",
        default=True,
    )
    parser.addini(
        "castore_auto_pack_blobs",
        f"loose blobs that trigger automatic packing (default {DEFAULT_PACK_AFTER_BLOBS})",
        default=str(DEFAULT_PACK_AFTER_BLOBS),
    )
    parser.addini(
        "castore_auto_pack_bytes",
        "bytes of loose blobs that trigger automatic packing (default 2MiB)",
        default="2MiB",
    )


def storage_settings(config: pytest.Config) -> StorageSettings:
    limit = str(config.getini("castore_max_value_bytes") or "").strip()
    return StorageSettings(
        max_value_bytes=limit or None,
        auto_pack=bool(config.getini("castore_auto_pack")),
        pack_after_blobs=int(str(config.getini("castore_auto_pack_blobs")).strip()),
        pack_after_bytes=parse_size(str(config.getini("castore_auto_pack_bytes"))),
    )
