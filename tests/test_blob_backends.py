"""The seam under the store: backends composed from backends, on real directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from castore import Store
from castore._storage.blobs.loose import LooseBlobs
from castore._storage.blobs.wrappers import ReadOnlyBlobs, ReadThroughBlobs
from castore._storage.core import StoreCore
from castore._storage.namespace import Namespace
from castore.errors import CorruptBlobError, MissingBlobError, ReadOnlyStoreError

ANSWERS = {f"question {i}": {"answer": f"answer number {i}", "n": i} for i in range(5)}


@pytest.fixture
def shared(tmp_path: Path) -> Store:
    """A store recorded elsewhere: its blobs serve as the slower tier."""
    store = Store(tmp_path / "shared")
    for key, value in ANSWERS.items():
        store.put("tests/test_q", key, value)
    return store


def files_under(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*.zst")}


def local_store_reading_through(tmp_path: Path, shared: Store) -> StoreCore:
    """A checkout with the shared store's indexes and no blobs, reading through to it."""
    local = tmp_path / "local"
    shutil.copytree(shared.root / "index", local / "index")
    backend = ReadThroughBlobs(LooseBlobs(local), ReadOnlyBlobs(LooseBlobs(shared.root)))
    return StoreCore(local, max_value_bytes=2**20, backend=backend)


def test_a_read_through_store_replays_from_the_source_and_keeps_each_blob_once(
    tmp_path: Path, shared: Store
) -> None:
    before = files_under(shared.root)
    core = local_store_reading_through(tmp_path, shared)
    namespace = Namespace(core, "tests/test_q")
    for key, value in ANSWERS.items():
        entry = namespace.entry(key)
        assert entry is not None
        assert namespace.read(entry, key) == value
    # every blob crossed once and now sits locally, byte for byte; the source is unchanged
    assert files_under(tmp_path / "local") == before
    assert files_under(shared.root) == before
    # the local copies serve on their own once the source is gone
    shutil.rmtree(shared.root / "blobs")
    entry = namespace.entry("question 3")
    assert entry is not None and namespace.read(entry, "question 3") == ANSWERS["question 3"]


def test_recording_through_a_read_through_store_writes_locally_only(
    tmp_path: Path, shared: Store
) -> None:
    before = files_under(shared.root)
    core = local_store_reading_through(tmp_path, shared)
    entry = Namespace(core, "tests/test_q").put("new question", {"answer": "new"})
    assert (tmp_path / "local" / "blobs" / entry.blob[:2] / f"{entry.blob}.zst").is_file()
    assert files_under(shared.root) == before


def test_a_damaged_source_blob_fails_its_digest_check_through_the_tier(
    tmp_path: Path, shared: Store
) -> None:
    entry = shared.entry("tests/test_q", "question 1")
    assert entry is not None
    source_file = shared.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"
    source_file.write_bytes(source_file.read_bytes()[:-2])  # a truncated copy
    core = local_store_reading_through(tmp_path, shared)
    namespace = Namespace(core, "tests/test_q")
    for _ in range(2):  # first read crosses from the source, the second is the local copy
        with pytest.raises(CorruptBlobError, match="question 1"):
            namespace.read(entry, "question 1")


def test_a_blob_in_neither_tier_is_missing_and_named_by_its_local_file(
    tmp_path: Path, shared: Store
) -> None:
    core = local_store_reading_through(tmp_path, shared)
    entry = core.indexes.cached("tests/test_q")["question 0"]
    (shared.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst").unlink()
    with pytest.raises(MissingBlobError) as raised:
        Namespace(core, "tests/test_q").read(entry, "question 0")
    assert raised.value.path == tmp_path / "local" / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"
    assert "question 0" in str(raised.value)


def test_a_read_only_view_reads_and_lists_but_refuses_every_change(shared: Store) -> None:
    before = files_under(shared.root)
    view = ReadOnlyBlobs(LooseBlobs(shared.root))
    digests = [blob.digest for blob in view.walk()]
    assert digests == sorted(blob.digest for blob in shared.blobs())
    assert all(view.exists(digest) and view.read(digest) for digest in digests)
    victim = digests[0]
    for attempt in (
        lambda: view.write(victim, b"other bytes"),
        lambda: view.delete(victim),
        lambda: view.quarantine(victim, shared.root / ".castore" / "quarantine"),
    ):
        with pytest.raises(ReadOnlyStoreError, match=victim[:16]):
            attempt()
    assert files_under(shared.root) == before


def test_recording_into_a_read_only_store_fails_before_touching_its_index(
    tmp_path: Path, shared: Store
) -> None:
    index = (shared.root / "index" / "tests" / "test_q.json").read_bytes()
    core = StoreCore(
        shared.root, max_value_bytes=2**20, backend=ReadOnlyBlobs(LooseBlobs(shared.root))
    )
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        Namespace(core, "tests/test_q").put("new question", {"answer": "new"})
    assert (shared.root / "index" / "tests" / "test_q.json").read_bytes() == index
    assert Store(shared.root).get("tests/test_q", "question 4") == ANSWERS["question 4"]
