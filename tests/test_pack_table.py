"""The pack table: every pack's blobs, sorted by digest behind a fan-out, kept in the
store's local state and trusted only when it is whole and built for the listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from castore import Store
from castore._storage.blobs.pack_table import (
    PackTable,
    build_table,
    listing_key,
    load_table,
    save_table,
)
from castore._storage.store import internals
from castore._upkeep.packing import pack_store


def digest(number: int) -> bytes:
    return number.to_bytes(2, "big") + os.urandom(30)


def test_a_table_finds_every_blob_and_only_those() -> None:
    first = [(digest(n), 16 + n * 10, 10) for n in range(300)]
    second = [(first[5][0], 999, 7), (digest(70000 % 65536), 16, 5)]
    table = PackTable(build_table(b"k" * 32, [("a" * 64, first), ("b" * 64, second)]))
    assert table.names == ["a" * 64, "b" * 64] and table.count == 301
    for number, (raw, offset, length) in enumerate(first):
        assert table.locate(raw.hex()) == (0, offset, length), number
    assert table.locate(second[1][0].hex()) == (1, 16, 5)
    assert table.locate(first[5][0].hex()) == (0, 66, 10)  # in two packs: the first wins
    assert table.locate(os.urandom(32).hex()) is None
    assert table.locate("not hex at all") is None


def test_a_kept_table_is_used_only_for_the_listing_it_was_built_for(tmp_path: Path) -> None:
    path = tmp_path / ".castore" / "pack-table"
    key = listing_key([("a" * 64, 100, 1)])
    assert save_table(path, build_table(key, [("a" * 64, [(digest(1), 16, 4)])]))
    assert load_table(path, key) is not None
    assert load_table(path, listing_key([("a" * 64, 100, 2)])) is None  # the .idx changed
    path.write_bytes(path.read_bytes()[:-10])  # truncated: rebuilt, never trusted
    assert load_table(path, key) is None
    with pytest.raises(ValueError, match="not a pack table"):
        PackTable(b"CASTTBL1" + bytes(200))


def test_a_store_keeps_its_table_and_rebuilds_it_when_packs_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for key in range(30):
        store.put("tests/test_a", f"key {key}", {"answer": key})
    pack_store(store)
    fresh = Store(store.root)
    assert fresh.get("tests/test_a", "key 7") == {"answer": 7}
    table = store.root / ".castore" / "pack-table"
    assert table.is_file()
    built = table.stat().st_mtime_ns
    assert Store(store.root).get("tests/test_a", "key 8") == {"answer": 8}
    assert table.stat().st_mtime_ns == built  # the next session maps it, no rebuild
    store.put("tests/test_a", "key 8", {"answer": "again"})
    pack_store(Store(store.root))
    assert Store(store.root).get("tests/test_a", "key 8") == {"answer": "again"}
    assert table.stat().st_mtime_ns != built
    assert internals(Store(store.root)).blobs.packs.pack_of("0" * 64) is None
