"""The store on disk: content addressing, dedup, integrity errors, and the public API."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3
import msgpack
import pytest
import zstandard

from castore import Entry, Store
from castore._storage.codec import pack_value
from castore._storage.last_run import load_judgements
from castore._storage.locks import StoreLock
from castore._storage.store import internals
from castore._upkeep.retraining import train_dictionary
from castore._upkeep.verify import verify
from castore.errors import (
    CorruptBlobError,
    EntryNotFoundError,
    IndexFormatError,
    LfsPointerError,
    MissingBlobError,
    UnsupportedFormatError,
    ValueTooLargeError,
)

RESPONSE = {
    "id": "chatcmpl-1",
    "model": "gpt-4o",
    "choices": [{"message": {"role": "assistant", "content": "def find_index(xs, x): ..."}}],
}


def blob_file(store: Store, entry: Entry) -> Path:
    return store.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"


def test_blob_file_is_a_zstd_frame_named_by_blake3_of_its_msgpack_content(store: Store) -> None:
    entry = store.put("tests/test_translate", "find_index", RESPONSE)

    path = blob_file(store, entry)
    frame = path.read_bytes()
    assert frame[:4] == b"\x28\xb5\x2f\xfd"  # the zstd magic number
    content = zstandard.ZstdDecompressor().decompress(frame)
    assert path.name == blake3.blake3(content).hexdigest() + ".zst"
    assert path.parent.name == path.name[:2]
    assert msgpack.unpackb(content) == RESPONSE
    assert entry.size == len(content)


def test_one_value_recorded_in_two_namespaces_is_stored_once(store: Store) -> None:
    first = store.put("tests/test_a", "key-a", RESPONSE)
    second = store.put("tests/test_b", "key-b", dict(RESPONSE))

    assert first.blob == second.blob
    assert [blob.digest for blob in store.blobs()] == [first.blob]
    assert store.get("tests/test_a", "key-a") == store.get("tests/test_b", "key-b") == RESPONSE


def test_index_records_metadata_duration_schema_and_time(tmp_path: Path) -> None:
    Store(tmp_path).put(
        "ns", "k", "v", metadata={"prompt": "hi"}, duration=31.25, schema="v2", stream="async"
    )

    entry = Store(tmp_path).entry("ns", "k")

    assert entry is not None
    assert entry.metadata == {"prompt": "hi"}
    assert entry.duration == 31.25
    assert entry.schema == "v2"
    assert entry.stream == "async"
    assert entry.format == 1
    assert entry.recorded_at.tzinfo is not None


def test_contains_delete_and_listing(store: Store) -> None:
    store.put("tests/test_a", "one", 1)
    store.put("tests/test_a", "two", 2)
    store.put("tests/deep/test_b", "three", 3)

    assert store.namespaces() == ["tests/deep/test_b", "tests/test_a"]
    assert sorted(store.entries("tests/test_a")) == ["one", "two"]
    assert store.contains("tests/test_a", "one")
    assert store.delete("tests/test_a", "one") is True
    assert store.delete("tests/test_a", "one") is False
    assert not store.contains("tests/test_a", "one")
    assert store.delete("tests/deep/test_b", "three") is True
    assert store.namespaces() == ["tests/test_a"]
    assert not (store.root / "index" / "tests" / "deep").exists()


def test_get_of_an_unknown_key_names_key_namespace_and_store(store: Store) -> None:
    with pytest.raises(EntryNotFoundError, match=r"'nope'.*'ns'.*store"):
        store.get("ns", "nope")


def test_reading_never_creates_files(tmp_path: Path) -> None:
    store = Store(tmp_path / "absent")
    assert store.namespaces() == []
    assert store.entry("ns", "k") is None
    assert not (tmp_path / "absent").exists()


def test_a_namespace_handle_sees_its_own_writes_and_others_after_a_refresh(
    tmp_path: Path,
) -> None:
    """The handle keeps its entries dict between replays (IndexFiles.generation): every
    write, delete, batch and refresh of the store must still show through it."""
    store, other = Store(tmp_path / "s"), Store(tmp_path / "s")
    handle = store.namespace("tests/test_a")
    assert handle.entry("k") is None
    store.put("tests/test_a", "k", 1)
    assert store.get("tests/test_a", "k") == 1
    with store.batch():
        store.put("tests/test_a", "k2", 2)
        assert handle.entry("k2") is not None  # the batch's overlay shows through
    other.put("tests/test_a", "k3", 3)
    assert handle.entry("k3") is None  # another process's write, not yet re-read
    store.refresh("tests/test_a")
    assert store.get("tests/test_a", "k3") == 3
    other.delete("tests/test_a", "k")
    store.refresh()
    assert handle.entry("k") is None
    store.delete("tests/test_a", "k2")
    assert handle.entry("k2") is None
    assert store.entries("tests/test_a").keys() == {"k3"}


def test_batch_writes_each_index_once_and_keeps_work_done_before_an_error(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.batch():
        for number in range(50):
            store.put("ns", f"key-{number}", {"n": number})
        assert store.get("ns", "key-49") == {"n": 49}  # visible inside the batch
        raise RuntimeError("interrupted")

    assert len(Store(tmp_path).entries("ns")) == 50


# --- integrity ----------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 5, -3], ids=["magic", "header", "body"])
def test_a_flipped_byte_raises_a_corrupt_blob_error_naming_blob_and_key(
    store: Store, position: int
) -> None:
    entry = store.put("tests/test_x", "the-key", {"text": "x" * 500, "n": list(range(50))})
    path = blob_file(store, entry)
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(CorruptBlobError) as caught:
        Store(store.root).get("tests/test_x", "the-key")

    message = str(caught.value)
    assert entry.blob in message
    assert "'tests/test_x'" in message
    assert "'the-key'" in message
    assert "castore verify" in message


def test_a_git_lfs_pointer_in_place_of_a_blob_says_to_run_git_lfs_pull(store: Store) -> None:
    entry = store.put("ns", "k", RESPONSE)
    blob_file(store, entry).write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{'0' * 64}\nsize 123\n"
    )

    with pytest.raises(LfsPointerError, match=r"'k'.*git-lfs pointer.*git lfs pull"):
        Store(store.root).get("ns", "k")


def test_a_missing_blob_is_a_clear_error(store: Store) -> None:
    entry = store.put("ns", "k", RESPONSE)
    blob_file(store, entry).unlink()

    with pytest.raises(MissingBlobError, match=r"missing.*'k'"):
        Store(store.root).get("ns", "k")


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "not valid JSON"),
        (b"<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n", "conflict markers"),
        (b'{"entries": {}}', "no 'castore_index'"),
        (b'{"castore_index": 1, "entries": []}', "'entries' must be an object"),
        (
            b'{"castore_index": 1, "entries": {"k": {"blob": "abc", "size": 1}}}',
            "entry 'k': 'blob' must be a 64-hex",
        ),
        (
            b'{"castore_index": 1, "entries": {"k": {"blob": "'
            + b"a" * 64
            + b'", "size": -1, "recorded_at": "2025-01-01T00:00:00Z"}}}',
            "entry 'k': 'size'",
        ),
    ],
)
def test_a_malformed_index_is_a_clear_error_naming_the_file(
    tmp_path: Path, content: bytes, detail: str
) -> None:
    index = tmp_path / "index" / "tests" / "test_x.json"
    index.parent.mkdir(parents=True)
    index.write_bytes(content)

    with pytest.raises(IndexFormatError) as caught:
        Store(tmp_path).entry("tests/test_x", "k")

    assert detail in str(caught.value)
    assert str(index) in str(caught.value)


def test_an_index_from_a_newer_castore_asks_for_an_upgrade(tmp_path: Path) -> None:
    index = tmp_path / "index" / "ns.json"
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"castore_index": 99, "entries": {}}))

    with pytest.raises(UnsupportedFormatError, match=r"format version 99.*Upgrade castore"):
        Store(tmp_path).entries("ns")


def test_a_store_config_from_a_newer_castore_asks_for_an_upgrade(tmp_path: Path) -> None:
    (tmp_path / "castore.json").write_text(json.dumps({"castore_store": 7}))

    with pytest.raises(UnsupportedFormatError, match="Upgrade castore"):
        Store(tmp_path)


def _plant_blob(store: Store, key: str, packed: bytes, frame: bytes) -> None:
    """Write a hand-made blob and its index entry, bypassing the store's own encoder."""
    digest = blake3.blake3(packed).hexdigest()
    path = store.root / "blobs" / digest[:2] / f"{digest}.zst"
    store.put("ns", "placeholder", 0)  # creates the store's folders and config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame)
    real = store.entry("ns", "placeholder")
    assert real is not None
    entry = Entry(blob=digest, size=len(packed), recorded_at=real.recorded_at)
    index = internals(store).indexes.path("ns")
    document = json.loads(index.read_text())
    document["entries"][key] = entry.to_json()
    index.write_text(json.dumps(document))


def test_a_decompression_bomb_with_a_declared_size_is_refused_before_decompressing(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, max_value_bytes=1024 * 1024)
    packed = b"\xc4" + b"\x00" * 10  # any bytes: the size check comes first
    bomb = zstandard.ZstdCompressor().compress(b"\x00" * (64 * 1024 * 1024))
    assert len(bomb) < 10_000
    _plant_blob(store, "bomb", packed, bomb)

    with pytest.raises(ValueTooLargeError, match=r"67,108,864 bytes.*limit of 1,048,576"):
        Store(tmp_path, max_value_bytes=1024 * 1024).get("ns", "bomb")


def test_a_decompression_bomb_without_a_declared_size_stops_at_the_limit(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, max_value_bytes=1024 * 1024)
    compressor = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    bomb = compressor.compress(b"\x00" * (32 * 1024 * 1024)) + compressor.flush()
    assert zstandard.frame_content_size(bomb) == -1
    _plant_blob(store, "bomb", b"x", bomb)

    with pytest.raises(ValueTooLargeError, match="unknown size"):
        Store(tmp_path, max_value_bytes=1024 * 1024).get("ns", "bomb")


@pytest.mark.parametrize(
    ("packed", "detail"),
    [
        (b"\xdd\xff\xff\xff\xff" + b"\x00" * 16, "exceeds max_array_len"),
        (b"\xdf\xff\xff\xff\xff" + b"\x00" * 16, "exceeds max_map_len"),
        (b"\xdb\x7f\xff\xff\xff" + b"a" * 16, "not valid castore msgpack"),
        (b"\xc1", "not valid castore msgpack"),
        (msgpack.packb(msgpack.ExtType(99, b"?")), "unknown msgpack extension type 99"),
    ],
    ids=["huge array", "huge map", "huge str", "reserved byte", "unknown ext"],
)
def test_oversized_or_malformed_msgpack_with_a_valid_digest_is_a_corrupt_blob_error(
    store: Store, packed: bytes, detail: str
) -> None:
    _plant_blob(store, "crafted", packed, zstandard.ZstdCompressor().compress(packed))

    with pytest.raises(CorruptBlobError, match=detail):
        Store(store.root).get("ns", "crafted")


def test_a_damaged_blob_is_repaired_when_the_value_is_recorded_again(store: Store) -> None:
    entry = store.put("ns", "k", RESPONSE)
    blob_file(store, entry).write_bytes(b"garbage")

    store.put("other", "k2", RESPONSE)  # same value, so same blob

    assert Store(store.root).get("ns", "k") == RESPONSE


def test_put_entry_writes_prepared_bytes(store: Store) -> None:
    packed = pack_value({"imported": True})
    digest = blake3.blake3(packed).hexdigest()
    real = store.put("ns", "other", 1)
    entry = Entry(blob=digest, size=len(packed), recorded_at=real.recorded_at, duration=2.0)

    internals(store).writer.put_entry("ns", "imported", entry, packed)

    assert Store(store.root).get("ns", "imported") == {"imported": True}


def test_an_emptied_index_file_is_reported_not_read_as_an_empty_namespace(store: Store) -> None:
    store.put("ns", "k", 1)
    internals(store).indexes.path("ns").write_bytes(b"")

    with pytest.raises(IndexFormatError, match="not valid JSON"):
        Store(store.root).entry("ns", "k")


def test_bytes_after_the_zstd_frame_do_not_change_reads_but_verify_reports_them(
    store: Store,
) -> None:
    entry = store.put("ns", "k", RESPONSE)
    path = blob_file(store, entry)
    path.write_bytes(path.read_bytes() + b"trailing garbage")

    assert Store(store.root).get("ns", "k") == RESPONSE  # the digest still matches
    faults = verify(Store(store.root)).faults
    assert [fault.kind for fault in faults] == ["corrupt"]
    assert entry.blob in str(faults[0].path)


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_threads_replay_and_record_through_one_store(tmp_path: Path, dictionary: bool) -> None:
    """zstd's native objects must not be shared by threads at once: before each thread
    got its own, concurrent replays read "corrupt" blobs or crashed in realloc()."""
    root = tmp_path / "store"
    values = {f"k{n}": {"text": f"word {n} " * 1500, "n": n} for n in range(400)}
    store = Store(root)
    with store.batch():
        for key, value in values.items():
            store.put("ns", key, value)
    if dictionary:
        train_dictionary(store, size=16_384)
    shared = Store(root)

    def replay(key: str) -> int:
        for _ in range(25):
            assert shared.get("ns", key) == values[key]
        return 1

    def record(number: int) -> int:
        shared.put("written", f"w{number}", {"text": f"other {number} " * 2000})
        return 1

    with ThreadPoolExecutor(8) as pool:
        # 10,000 replays: with shared decompressors the first wrong read came after 200
        # to 2,600 of them. 100 recordings keep 8 threads putting at once.
        assert sum(pool.map(replay, values)) == len(values)
        assert sum(pool.map(record, range(100))) == 100
    assert verify(Store(root)).faults == []


def test_the_store_lock_taken_again_by_its_holder_is_let_go_by_the_outermost_release(
    tmp_path: Path,
) -> None:
    import filelock  # noqa: PLC0415

    lock = StoreLock(tmp_path / ".castore")
    assert lock.acquire() is True
    assert lock.acquire() is False  # a put inside a batch: counted, not taken again
    other = filelock.FileLock(lock.path)  # another open of the file, as another process
    lock.release()
    with pytest.raises(filelock.Timeout):
        other.acquire(timeout=0)
    lock.release()
    other.acquire(timeout=0)
    other.release()


@pytest.mark.parametrize(
    ("name", "kind", "remedy"),
    [
        ("castore.json", "store file", "git checkout --"),
        ("index/tests/test_a.json", "index", "git checkout --"),
        (".castore/last-run.json", "local state file", "Delete it"),
    ],
)
def test_a_malformed_file_is_named_by_its_kind_with_the_remedy_that_fits(
    tmp_path: Path, name: str, kind: str, remedy: str
) -> None:
    """castore.json and indexes come back from git; local state is git-ignored, so the
    way back is to delete it, never a `git checkout` that cannot work."""
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "k", {"v": 1})
    path = store.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(IndexFormatError) as raised:
        if name.startswith(".castore"):
            load_judgements(store.root / ".castore")
        else:
            Store(store.root).get("tests/test_a", "k")
    message = str(raised.value)
    assert message.startswith(f"{kind} {path} is malformed") and remedy in message
    if kind == "local state file":
        assert "git checkout" not in message


def test_a_store_kept_below_a_folder_named_like_the_state_folder_gets_index_advice(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".castore" / "project" / "recordings" / "index" / "tests" / "a.json"
    assert str(IndexFormatError(path, "x")).startswith(f"index {path} is malformed")
    state = tmp_path / ".castore" / "project" / "recordings" / ".castore" / "last-run.json"
    assert "Delete it" in str(IndexFormatError(state, "x"))
