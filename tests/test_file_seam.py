"""The file seam under the store: every backend keeps the same promises, and wrappers
compose around any of them (read-only, read-through with a local cache, warm-up).

Backends run on real places: a folder, memory, a git revision, and object storage
through obstore (a local folder, memory, and moto's S3 API on loopback).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from castore import Store
from castore._storage.blobs.packfile import build_pack
from castore._storage.config import RemoteSpec, StoreConfig
from castore._storage.core import open_core
from castore._storage.files.folder import FolderFiles
from castore._storage.files.git_tree import GitTreeFiles
from castore._storage.files.memory import MemoryFiles
from castore._storage.files.object_store import ObjectStoreFiles
from castore._storage.files.seam import Cut, FileHandle, Files
from castore._storage.files.transfer import copy_ranges
from castore._storage.files.wrappers import ReadOnlyFiles, ReadThroughFiles
from castore._storage.layout import FileKind
from castore._storage.namespace import Namespace
from castore._storage.store import internals, store_over
from castore._upkeep.collect import collect_garbage
from castore.errors import (
    MissingBlobError,
    ReadOnlyStoreError,
    RemoteObjectError,
    RemoteUnavailableError,
)

ANSWERS = {f"question {i}": {"answer": f"answer number {i}", "n": i} for i in range(5)}
DIGEST_A = "a" * 64
DIGEST_B = "b" * 64
PACK = FileKind.PACK

# --- one contract, every backend ---------------------------------------------------------


@pytest.fixture(params=["folder", "memory", "obstore-file", "obstore-memory", "obstore-s3"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Files]:
    kind = request.param
    if kind == "folder":
        yield FolderFiles(tmp_path / "store")
    elif kind == "memory":
        yield MemoryFiles()
    elif kind == "obstore-file":
        yield ObjectStoreFiles("folder", (tmp_path / "remote").as_uri(), {})
    elif kind == "obstore-memory":
        yield ObjectStoreFiles("mem", "memory://", {})
    else:
        endpoint = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        yield ObjectStoreFiles("s3", f"s3://{bucket}/a/prefix", {"endpoint": endpoint})


def test_every_backend_reads_writes_lists_stats_and_deletes_files_by_kind_and_name(
    files: Files,
) -> None:
    data, _ = build_pack([(DIGEST_A, b"frame one"), (DIGEST_B, b"frame two")], 0)
    name = _.name
    assert files.read(PACK, name) is None
    assert files.stat(PACK, name) is None
    assert files.open_ranges(PACK, name) is None
    files.write(PACK, name, data)
    files.write(FileKind.BLOB, DIGEST_A, b"a loose frame")
    assert files.read(PACK, name) == data
    assert files.read_range(PACK, name, 16, 9) == b"frame one"
    reader = files.open_ranges(PACK, name)
    assert reader is not None and reader.size == len(data)
    assert reader.pread(9, 25) == b"frame two"
    assert reader.pread(100, len(data) - 4) == data[-4:]  # a short read at the end
    reader.close()
    info = files.stat(PACK, name)
    assert info is not None and info.size == len(data) and info.mtime > 0
    assert [info.name for info in files.listing(PACK)] == [name]
    assert [info.name for info in files.listing(FileKind.BLOB)] == [DIGEST_A]
    assert list(files.listing(FileKind.PACK_INDEX)) == []
    wanted = [FileHandle(PACK, name), FileHandle(FileKind.BLOB, DIGEST_B)]
    assert files.missing(wanted) == [FileHandle(FileKind.BLOB, DIGEST_B)]
    assert dict(files.read_many(wanted)) == {wanted[0]: data, wanted[1]: None}
    files.delete(PACK, name)
    files.delete(PACK, name)  # absent: no error
    assert files.read(PACK, name) is None
    assert [info.name for info in files.listing(PACK)] == []


def test_object_storage_writes_once_and_keeps_the_first_copy(tmp_path: Path) -> None:
    """Every name is content-addressed, so a remote keeps the first upload (a conditional
    put): a second one never replaces it, nor fails."""
    remote = ObjectStoreFiles("folder", (tmp_path / "remote").as_uri(), {})
    remote.write(FileKind.BLOB, DIGEST_A, b"first")
    remote.write(FileKind.BLOB, DIGEST_A, b"second")
    assert remote.read(FileKind.BLOB, DIGEST_A) == b"first"


def test_many_missing_names_are_found_by_listing_not_by_one_request_each(
    s3_server: str, s3_bucket: str
) -> None:
    remote = ObjectStoreFiles("s3", f"s3://{s3_bucket}", {"endpoint": s3_server})
    names = [f"{n:064x}" for n in range(40)]
    for name in names[::2]:
        remote.write(FileKind.BLOB, name, b"x")
    missing = remote.missing(FileHandle(FileKind.BLOB, name) for name in names)
    assert [handle.name for handle in missing] == names[1::2]


def test_a_git_revision_is_read_through_the_seam_and_refuses_writes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    store = Store(repo / "recordings")
    for key, value in ANSWERS.items():
        store.put("tests/test_q", key, value)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = GitTreeFiles(repo, commit, "recordings", label="HEAD:recordings")
    local = FolderFiles(store.root)
    assert [info.name for info in tree.listing(FileKind.BLOB)] == [
        info.name for info in local.listing(FileKind.BLOB)
    ]
    for info in local.listing(FileKind.BLOB):
        assert tree.read(FileKind.BLOB, info.name) == local.read(FileKind.BLOB, info.name)
    assert tree.location(FileKind.BLOB, DIGEST_A).as_posix().startswith("HEAD:recordings/blobs/")
    with pytest.raises(Exception, match="read-only"):
        tree.write(FileKind.BLOB, DIGEST_A, b"x")


# --- wrappers: read-only, read-through ---------------------------------------------------


@pytest.fixture
def shared(tmp_path: Path) -> Store:
    """A store recorded elsewhere: its files serve as the slower tier."""
    store = Store(tmp_path / "shared")
    for key, value in ANSWERS.items():
        store.put("tests/test_q", key, value)
    return store


def files_under(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*.zst")}


def reading_through(tmp_path: Path, shared: Store) -> Store:
    """A checkout with the shared store's indexes and no blobs, reading through to it."""
    local = tmp_path / "local"
    shutil.copytree(shared.root / "index", local / "index")
    source = ReadOnlyFiles(FolderFiles(shared.root))
    return store_over(open_core(local, source=source, source_label="the shared folder"))


def test_a_read_through_store_replays_from_the_source_and_keeps_each_file_once(
    tmp_path: Path, shared: Store
) -> None:
    before = files_under(shared.root)
    store = reading_through(tmp_path, shared)
    for key, value in ANSWERS.items():
        assert store.get("tests/test_q", key) == value
    # every blob crossed once and now sits locally, byte for byte; the source is unchanged
    assert files_under(tmp_path / "local") == before
    assert files_under(shared.root) == before
    shutil.rmtree(shared.root / "blobs")  # the local copies serve on their own
    assert Store(tmp_path / "local").get("tests/test_q", "question 3") == ANSWERS["question 3"]


def test_recording_through_a_read_through_store_writes_locally_only(
    tmp_path: Path, shared: Store
) -> None:
    before = files_under(shared.root)
    entry = reading_through(tmp_path, shared).put("tests/test_q", "new", {"answer": "new"})
    assert (tmp_path / "local" / "blobs" / entry.blob[:2] / f"{entry.blob}.zst").is_file()
    assert files_under(shared.root) == before


def test_a_damaged_source_file_is_refused_by_name_and_never_kept(
    tmp_path: Path, shared: Store
) -> None:
    entry = shared.entry("tests/test_q", "question 1")
    assert entry is not None
    source_file = shared.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"
    source_file.write_bytes(source_file.read_bytes()[:-2])  # a truncated copy
    store = reading_through(tmp_path, shared)
    for _ in range(2):  # refused each time: nothing damaged reached the local cache
        with pytest.raises(RemoteObjectError, match="question 1") as raised:
            store.get("tests/test_q", "question 1")
        assert "the shared folder" in str(raised.value)
    assert not (tmp_path / "local" / "blobs" / entry.blob[:2] / f"{entry.blob}.zst").exists()
    assert store.get("tests/test_q", "question 2") == ANSWERS["question 2"]


def test_a_blob_in_neither_tier_is_missing_and_named_by_its_local_file(
    tmp_path: Path, shared: Store
) -> None:
    store = reading_through(tmp_path, shared)
    entry = store.entry("tests/test_q", "question 0")
    assert entry is not None
    (shared.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst").unlink()
    with pytest.raises(MissingBlobError) as raised:
        store.get("tests/test_q", "question 0")
    assert raised.value.path == tmp_path / "local" / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"
    assert "question 0" in str(raised.value)


def test_a_read_only_view_reads_and_lists_but_refuses_every_change(shared: Store) -> None:
    before = files_under(shared.root)
    view = ReadOnlyFiles(FolderFiles(shared.root))
    names = [info.name for info in view.listing(FileKind.BLOB)]
    assert names == sorted(blob.digest for blob in shared.blobs())
    assert all(view.read(FileKind.BLOB, name) for name in names)
    store = store_over(open_core(shared.root, files=view))
    victim = names[0]
    for attempt in (
        lambda: view.write(FileKind.BLOB, victim, b"other bytes"),
        lambda: view.delete(FileKind.BLOB, victim),
        lambda: internals(store).blobs.quarantine(victim, shared.root / ".castore" / "q"),
    ):
        with pytest.raises(ReadOnlyStoreError, match=victim[:16]):
            attempt()
    assert files_under(shared.root) == before


def test_recording_into_a_read_only_store_fails_before_touching_its_index(shared: Store) -> None:
    index = (shared.root / "index" / "tests" / "test_q.json").read_bytes()
    core = open_core(shared.root, files=ReadOnlyFiles(FolderFiles(shared.root)))
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        Namespace(core, "tests/test_q").put("new question", {"answer": "new"})
    assert (shared.root / "index" / "tests" / "test_q.json").read_bytes() == index
    assert Store(shared.root).get("tests/test_q", "question 4") == ANSWERS["question 4"]


# --- gc on every composition (the silent miss of round 2) ----------------------------------


def _plain(root: Path) -> Store:
    return Store(root)


def _over_memory(root: Path) -> Store:
    return store_over(open_core(root, files=MemoryFiles()))


def _through_folder(root: Path) -> Store:
    source = ReadOnlyFiles(FolderFiles(root.parent / "elsewhere"))
    return store_over(open_core(root, source=source, source_label="a folder"))


def _through_object_storage(root: Path) -> Store:
    source = ObjectStoreFiles("bucket", (root.parent / "bucket").as_uri(), {})
    return store_over(open_core(root, source=source, source_label="remote bucket"))


def _with_a_remote_in_castore_json(root: Path) -> Store:
    """The composition users get: castore.json names a default remote."""
    Store(root).put("warm", "up", 0)
    core = internals(Store(root))
    config = core.config.current
    remote = RemoteSpec((root.parent / "remote").as_uri())
    core.writer.save_config(
        StoreConfig(
            level=config.level,
            remotes={"origin": remote},
            default_remote="origin",
        )
    )
    store = Store(root)
    assert isinstance(internals(store).blobs.files, ReadThroughFiles)
    return store


COMPOSITIONS: dict[str, Callable[[Path], Store]] = {
    "folder with lfs warm-up": _plain,
    "memory": _over_memory,
    "read-through to a folder": _through_folder,
    "read-through to object storage": _through_object_storage,
    "default remote from castore.json": _with_a_remote_in_castore_json,
}


@pytest.mark.parametrize("compose", COMPOSITIONS.values(), ids=list(COMPOSITIONS))
def test_gc_removes_every_unreferenced_blob_on_every_composition(
    tmp_path: Path, compose: Callable[[Path], Store]
) -> None:
    store = compose(tmp_path / "store")
    store.put("tests/test_q", "kept", {"answer": "kept"})
    old = store.put("tests/test_q", "re-recorded", {"answer": "before"})
    store.put("tests/test_q", "re-recorded", {"answer": "after"})
    dropped = store.put("tests/test_q", "deleted", {"answer": "deleted"})
    store.delete("tests/test_q", "deleted")
    collection = collect_garbage(store)
    assert sorted(blob.digest for blob in collection.removed) == sorted([old.blob, dropped.blob])
    assert {blob.digest for blob in store.blobs()}.isdisjoint({old.blob, dropped.blob})
    assert store.get("tests/test_q", "kept") == {"answer": "kept"}
    assert store.get("tests/test_q", "re-recorded") == {"answer": "after"}
    again = collect_garbage(store)
    assert again.removed == []


def test_gc_through_a_read_only_view_fails_loudly_instead_of_removing_nothing(
    shared: Store,
) -> None:
    shared.put("tests/test_q", "question 0", {"answer": "re-recorded"})
    store = store_over(open_core(shared.root, files=ReadOnlyFiles(FolderFiles(shared.root))))
    with pytest.raises(ReadOnlyStoreError):
        collect_garbage(store)


def test_a_folder_not_made_yet_has_a_signature_that_its_creation_changes(tmp_path: Path) -> None:
    """Else a store without packs would list and reload its pack table for every blob it
    is asked about (each put of a recording)."""
    files = FolderFiles(tmp_path)
    absent = files.signature(FileKind.PACK)
    assert absent is not None and files.signature(FileKind.PACK) == absent
    (tmp_path / "packs").mkdir()
    assert files.signature(FileKind.PACK) not in (None, absent)


def test_a_range_the_source_refuses_is_reported_and_the_others_are_kept(tmp_path: Path) -> None:
    """A ranged read can fail on its own (S3 answers 416 past an object's end): that cut
    is damaged, the batch goes on, and what was written is flushed."""

    class Refusing(MemoryFiles):
        def read_range(self, kind: FileKind, name: str, offset: int, length: int) -> bytes | None:
            if offset >= 100:
                raise RemoteUnavailableError("origin", "s3://bucket", "416 Range Not Satisfiable")
            return super().read_range(kind, name, offset, length)

    source = Refusing()
    pack = FileHandle(FileKind.PACK, "a" * 64)
    source.write(*pack, bytes(range(100)) * 2)
    cuts = [
        Cut(pack, 0, 10, FileHandle(FileKind.BLOB, "b" * 64)),
        Cut(pack, 150, 10, FileHandle(FileKind.BLOB, "c" * 64)),
        Cut(FileHandle(FileKind.PACK, "d" * 64), 0, 10, FileHandle(FileKind.BLOB, "e" * 64)),
    ]
    target = FolderFiles(tmp_path)
    copied = copy_ranges(source, cuts, lambda pack_name: target)
    assert (copied.files, copied.bytes) == (1, 10)
    assert target.read(FileKind.BLOB, "b" * 64) == bytes(range(10))
    assert [(cut.target.name, "416" in problem) for cut, problem in copied.damaged] == [
        ("c" * 64, True)
    ]
    assert [cut.target.name for cut in copied.absent] == ["e" * 64]  # no such pack
    assert target.stat(FileKind.BLOB, "c" * 64) is None


def test_cut_frames_are_kept_only_where_the_state_folder_lies_inside_the_store(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "store", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    assert open_core(root, source=MemoryFiles(), source_label="m").blobs.cut is not None
    (root / ".castore").symlink_to(outside)  # planted: reads would leave the store
    assert open_core(root, source=MemoryFiles(), source_label="m").blobs.cut is None
