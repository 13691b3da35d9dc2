"""Packs: loose blobs moved into a few immutable, deterministic files, read like loose ones."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from conftest import quick_store

from castore import Store
from castore._storage.blobs.packfile import parse_index
from castore._storage.layout import FileKind
from castore._storage.store import internals
from castore._upkeep import packing
from castore._upkeep.collect import collect_garbage
from castore._upkeep.importers import export_namespace
from castore._upkeep.retraining import train_dictionary
from castore._upkeep.verify import FaultKind, verify
from castore.cli import main
from castore.errors import CorruptBlobError, IndexFormatError, LfsPointerError

MODULES = 4
KEYS = 60


def response(module: int, key: int, variant: str = "") -> dict[str, object]:
    return {
        "id": f"chatcmpl-{module}-{key}{variant}",
        "choices": [{"message": {"role": "assistant", "content": f"Answer {key}{variant}. " * 40}}],
        "usage": {"prompt_tokens": 10 + key, "completion_tokens": 40},
    }


def record(root: Path) -> Store:
    store = Store(root)
    with store.batch():
        for module in range(MODULES):
            for key in range(KEYS):
                store.put(f"tests/test_m{module}", f"key {key:03d}", response(module, key))
    return store


def every_value(store: Store) -> dict[tuple[str, str], object]:
    fresh = Store(store.root)
    return {
        (namespace, key): fresh.get(namespace, key)
        for namespace in fresh.namespaces()
        for key in fresh.entries(namespace)
    }


def pack_files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((root / "packs").glob("*"))}


def loose_files(root: Path) -> list[Path]:
    return sorted((root / "blobs").rglob("*.zst"))


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`record`'s store, written once per module and never changed: tests get
    copies (:func:`recorded`). Recording it costs 0.3 s of CPU, a copy 0.09 s."""
    return record(tmp_path_factory.mktemp("recorded") / "store").root


@pytest.fixture(scope="module")
def packed_store(tmp_path_factory: pytest.TempPathFactory, recorded_store: Path) -> Path:
    """:func:`recorded_store` packed, once per module and never changed (record and pack
    cost 0.5 s of CPU, a copy of the packed store 5 ms)."""
    root = tmp_path_factory.mktemp("packed") / "store"
    shutil.copytree(recorded_store, root)
    packing.pack_store(Store(root))
    return root


@pytest.fixture
def recorded(tmp_path: Path, recorded_store: Path) -> Store:
    """This test's own copy of the recorded, unpacked store."""
    return Store(shutil.copytree(recorded_store, tmp_path / "store"))


@pytest.fixture
def packed(tmp_path: Path, packed_store: Path) -> Store:
    """This test's own copy of the packed store."""
    return Store(shutil.copytree(packed_store, tmp_path / "store"))


def test_packing_moves_every_value_into_packs_and_every_entry_reads_the_same(
    recorded: Store,
) -> None:
    store = recorded
    before = every_value(store)
    report = packing.pack_store(store)

    assert report.blobs_packed == MODULES * KEYS
    assert report.dictionary is not None  # trained at the first pack, no command needed
    assert every_value(store) == before
    # Only the dictionary stays loose: it is needed to read the packs.
    dictionary_blob = internals(Store(store.root)).config.current.dictionaries[report.dictionary]
    assert [path.stem for path in loose_files(store.root)] == [dictionary_blob]
    config = json.loads((store.root / "castore.json").read_text())
    assert config["castore_store"] == 2  # older castore refuses it by name
    for index in report.written:
        assert (store.root / "packs" / f"{index.name}.pack").is_file()
        assert (
            (store.root / "packs" / f"{index.name}.idx")
            .read_text()
            .startswith("castore-pack-index 1\n")
        )
    assert verify(Store(store.root)).faults == []


def test_a_namespace_s_blobs_sit_together_in_pack_order(packed: Store) -> None:
    packs = internals(packed).blobs.packs
    assert packs is not None
    (index,) = packs.indexes().values()
    order = list(index.slots)
    for module in range(MODULES):
        blobs = [entry.blob for _, entry in sorted(packed.entries(f"tests/test_m{module}").items())]
        positions = [order.index(blob) for blob in blobs]
        assert positions == list(range(positions[0], positions[0] + KEYS))


def test_two_machines_packing_the_same_recordings_write_identical_packs(
    tmp_path: Path, recorded: Store
) -> None:
    """Recorded separately (other times, another batch order), packed separately."""
    first = recorded
    second = Store(tmp_path / "second")
    for module in reversed(range(MODULES)):
        for key in reversed(range(KEYS)):
            second.put(f"tests/test_m{module}", f"key {key:03d}", response(module, key))
    packing.pack_store(first)
    packing.pack_store(second)

    assert pack_files(first.root) == pack_files(second.root)
    assert (first.root / "castore.json").read_bytes() == (second.root / "castore.json").read_bytes()


def test_re_recording_one_response_and_packing_again_adds_one_small_pack(packed: Store) -> None:
    before = pack_files(packed.root)
    packed.put("tests/test_m2", "key 007", response(2, 7, variant=" (re-recorded)"))
    report = packing.pack_store(Store(packed.root))

    after = pack_files(packed.root)
    assert {name: data for name, data in after.items() if name in before} == before
    new = {name: data for name, data in after.items() if name not in before}
    assert len(new) == 2  # one .pack and its .idx
    assert report.blobs_packed == 1
    assert sum(len(data) for name, data in new.items() if name.endswith(".pack")) < 2**20
    assert Store(packed.root).get("tests/test_m2", "key 007") == response(
        2, 7, variant=" (re-recorded)"
    )


def test_gc_rewrites_a_pack_only_past_the_unused_threshold(packed: Store) -> None:
    """Half the bytes by default: a re-recording of part of a store re-uploads about what
    was re-recorded, not the packs around it."""
    before = pack_files(packed.root)
    packed.delete("tests/test_m0", "key 000")
    for key in range(KEYS):
        packed.delete("tests/test_m1", f"key {key:03d}")
    few = collect_garbage(Store(packed.root))
    assert few.packing.removed_packs == []  # 61 of 240 dead: under half, the pack stays
    assert few.dead_packed == KEYS + 1
    assert pack_files(packed.root) == before
    stricter = collect_garbage(Store(packed.root), dry_run=True, max_unused=0.10)
    assert len(stricter.packing.removed_packs) == 1  # what --max-unused 10% would rewrite

    for key in range(KEYS):
        packed.delete("tests/test_m2", f"key {key:03d}")
    for key in range(10):
        packed.delete("tests/test_m3", f"key {key:03d}")
    many = collect_garbage(Store(packed.root))
    assert len(many.packing.removed_packs) == 1
    assert many.dead_packed == 0
    remaining = every_value(packed)
    assert len(remaining) == (MODULES - 2) * KEYS - 11
    assert remaining[("tests/test_m3", "key 010")] == response(3, 10)
    packs = internals(Store(packed.root)).blobs.packs
    assert packs is not None
    live = {entry.blob for ns in packed.namespaces() for entry in packed.entries(ns).values()}
    held = {blob for index in packs.indexes().values() for blob in index.slots}
    assert held == live
    assert verify(Store(packed.root)).faults == []


def test_repack_of_an_unchanged_store_writes_the_same_packs(packed: Store) -> None:
    before = pack_files(packed.root)
    packing.pack_store(Store(packed.root), repack=True)
    assert pack_files(packed.root) == before


def test_upkeep_commands_work_on_packed_blobs(packed: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    root = str(packed.root)
    show = runner.invoke(main, ["--root", root, "show", "tests/test_m1", "key 005"])
    assert show.exit_code == 0, show.output
    assert "chatcmpl-1-5" in show.output
    stats = runner.invoke(main, ["--root", root, "stats", "--json"])
    assert json.loads(stats.output)["packed_blobs"] == MODULES * KEYS
    verified = runner.invoke(main, ["--root", root, "verify"])
    assert verified.exit_code == 0, verified.output
    exported = export_namespace(Store(root), "tests/test_m3")
    assert exported["key 004"]["response"]["id"] == "chatcmpl-3-4"
    blob = packed.entries("tests/test_m0")["key 001"].blob
    cat = runner.invoke(main, ["--root", root, "cat", blob])
    assert cat.exit_code == 0, cat.output
    assert "chatcmpl-0-1" in cat.output


def test_training_a_new_dictionary_rewrites_the_packs_and_keeps_every_value(
    packed: Store,
) -> None:
    before = every_value(packed)
    old_packs = set(pack_files(packed.root))
    training = train_dictionary(Store(packed.root), size=16384)
    assert every_value(packed) == before
    assert set(pack_files(packed.root)).isdisjoint(old_packs)
    packs = internals(Store(packed.root)).blobs.packs
    assert packs is not None
    for index in packs.indexes().values():
        assert index.dictionary == training.dictionary_id
    assert verify(Store(packed.root)).faults == []


def test_the_store_in_fixtures_written_by_older_castore_packs_and_reads_back(
    tmp_path: Path,
) -> None:
    """The on-disk format is a promise: a format-1 store from this repository's history."""
    source = Path(__file__).resolve().parents[1] / "fixtures"
    copy = tmp_path / "fixtures"
    shutil.copytree(source, copy)
    store = Store(copy)
    before = every_value(store)
    packing.pack_store(store)
    assert every_value(store) == before
    assert json.loads((copy / "castore.json").read_text())["castore_store"] == 2


# --- damaged packs ----------------------------------------------------------------------


def only_pack(store: Store) -> tuple[Path, Path]:
    (pack,) = (store.root / "packs").glob("*.pack")
    return pack, pack.with_suffix(".idx")


def test_a_truncated_pack_is_a_corrupt_blob_naming_the_pack(packed: Store) -> None:
    pack, _ = only_pack(packed)
    pack.write_bytes(pack.read_bytes()[:200])  # the header and the first few frames
    last_key = f"key {KEYS - 1:03d}"
    with pytest.raises(CorruptBlobError) as raised:
        Store(packed.root).get(f"tests/test_m{MODULES - 1}", last_key)
    assert pack.name in str(raised.value)
    kinds = {fault.kind for fault in verify(Store(packed.root)).faults}
    assert FaultKind.CORRUPT in kinds


def test_a_damaged_pack_index_is_rebuilt_from_the_pack_and_reported(packed: Store) -> None:
    _, index = only_pack(packed)
    index.write_text("castore-pack-index 1\ngarbage\n")
    before_damage = response(2, 3)
    assert Store(packed.root).get("tests/test_m2", "key 003") == before_damage
    faults = verify(Store(packed.root)).faults
    assert [(fault.kind, fault.path) for fault in faults] == [(FaultKind.INDEX, index)]
    assert "pack's own table" in faults[0].detail


def test_a_damaged_index_of_a_damaged_pack_names_the_index(packed: Store) -> None:
    pack, index = only_pack(packed)
    index.write_text("not an index\n")
    pack.write_bytes(b"CASTPACK" + b"\0" * 100)
    with pytest.raises(IndexFormatError, match=index.name):
        Store(packed.root).get("tests/test_m2", "key 003")


def test_a_pack_that_is_still_an_lfs_pointer_says_to_pull(packed: Store) -> None:
    pack, _ = only_pack(packed)
    pack.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "size 12345\n"
    )
    with pytest.raises(LfsPointerError, match="git lfs pull"):
        Store(packed.root).get("tests/test_m1", "key 001")
    assert FaultKind.LFS_POINTER in {fault.kind for fault in verify(Store(packed.root)).faults}


def test_a_symlink_planted_at_a_pack_is_refused(packed: Store, tmp_path: Path) -> None:
    pack, _ = only_pack(packed)
    outside = tmp_path / "outside.pack"
    shutil.move(pack, outside)
    pack.symlink_to(outside)
    with pytest.raises(CorruptBlobError, match="symbolic link"):
        Store(packed.root).get("tests/test_m1", "key 001")


PACKER = """
import sys
from castore import Store
from castore._upkeep import packing
print("start", flush=True)
packing.pack_store(Store(sys.argv[1]))
print("done", flush=True)
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4])
def test_a_pack_killed_at_any_instant_leaves_every_entry_readable(
    recorded: Store, start_python, delay: float
) -> None:
    store = recorded
    before = every_value(store)
    packer = start_python(PACKER, str(store.root))
    assert packer.stdout is not None
    assert packer.stdout.readline().strip() == "start"
    time.sleep(delay)
    packer.send_signal(signal.SIGKILL)
    packer.wait()
    assert every_value(store) == before
    # A second pack finishes the job; gc then leaves a clean store.
    packing.pack_store(Store(store.root))
    collect_garbage(Store(store.root))
    assert every_value(store) == before
    assert verify(Store(store.root)).faults == []


def test_pack_frames_are_standalone_zstd_frames_of_the_values(packed: Store) -> None:
    """Each frame inside a pack is what a loose blob file would hold."""
    packs = internals(packed).blobs.packs
    assert packs is not None
    ((name, index),) = packs.indexes().items()
    data = (packed.root / "packs" / f"{name}.pack").read_bytes()
    assert (
        parse_index(
            (packed.root / "packs" / f"{name}.idx").read_bytes(),
            packed.root / "packs" / f"{name}.idx",
        )
        == index
    )
    first = next(iter(index.slots.values()))
    frame = data[first.offset : first.offset + first.length]
    assert zstandard.get_frame_parameters(frame).dict_id == index.dictionary


def test_a_gc_killed_between_a_pack_and_its_index_loses_nothing_at_the_next_gc(
    recorded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next gc writes the same pack again (packs are named by content) and pairs it:
    the pack the killed run left unpaired is now the one that holds the live blobs."""
    store = recorded
    packing.pack_store(store, target_bytes=4 * 1024)
    with store.batch():
        for key in range(0, KEYS, 2):
            for module in range(MODULES):
                store.delete(f"tests/test_m{module}", f"key {key:03d}")
    before = every_value(store)

    def killed_after_the_pack(self, data: bytes, index) -> None:  # type: ignore[no-untyped-def]
        self.files.write(FileKind.PACK, index.name, data)
        raise KeyboardInterrupt  # as a kill before the .idx

    monkeypatch.setattr(type(internals(store).blobs.packs), "add_pack", killed_after_the_pack)
    with pytest.raises(KeyboardInterrupt):
        collect_garbage(Store(store.root), max_unused=0.0)
    monkeypatch.undo()
    collection = collect_garbage(Store(store.root), max_unused=0.0)
    assert collection.packing.written and collection.unpaired_packs == []
    assert every_value(store) == before
    assert verify(Store(store.root)).faults == []


COLLECTOR = """
import sys
from castore import Store
from castore._upkeep.collect import collect_garbage
print("start", flush=True)
collect_garbage(Store(sys.argv[1]), max_unused=0.0)
print("done", flush=True)
"""


def test_a_gc_killed_while_it_rewrites_packs_leaves_every_entry_readable(
    tmp_path: Path, start_python
) -> None:
    """Kills at several instants of a rewrite of 50 packs; at least one lands mid-way."""
    source = quick_store(tmp_path / "source")
    chance = random.Random(3)
    with source.batch():
        for key in range(400):  # incompressible, so that packs of 16 KiB are many
            text = chance.randbytes(1000).hex()
            source.put(f"tests/test_m{key % 4}", f"key {key:03d}", {"text": text})
    packing.pack_store(source, target_bytes=16 * 1024)
    with source.batch():
        for key in range(0, 400, 2):
            source.delete(f"tests/test_m{key % 4}", f"key {key:03d}")
    before = every_value(source)
    interrupted = 0
    for number, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.12)):
        root = tmp_path / f"copy{number}"
        shutil.copytree(source.root, root)
        collector = start_python(COLLECTOR, str(root))
        assert collector.stdout is not None
        assert collector.stdout.readline().strip() == "start"
        time.sleep(delay)
        collector.send_signal(signal.SIGKILL)
        collector.wait()
        interrupted += "done" not in collector.stdout.read()
        assert every_value(Store(root)) == before
        collect_garbage(Store(root), max_unused=0.0)
        assert every_value(Store(root)) == before
        assert verify(Store(root)).faults == []
    assert interrupted >= 1  # the kills did land inside the rewrite
