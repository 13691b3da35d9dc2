"""The raw floor: the least that a reader of castore's on-disk format does, verified.

The in-memory floor (``floor``) holds every value in memory before the first test, so it
tells what a suite costs with no storage at all. castore's targets are ratios to it, and
a ratio alone cannot say how much of castore's time is castore's own code and how much
is the work that reading from disk takes whatever the code. This suite answers that. Its
``recorded`` fixture does, for each test module and in native calls only, what the issue
requires of a replay:

* read the module's index file from castore's store, and parse it (no validation);
* for each entry: read its frame from its pack (``pread``; every frame's place is in one
  table loaded once per session, as castore's pack table is), decompress it with its
  zstd dictionary, check its blake3 digest, and unpack its msgpack.

No Python object stands between those calls, no check beyond the digest, no error
message: no correct reader of this format (a JSON index per module, one zstd frame and
one blake3 digest per value) can do much less per module. Other formats could (one file
per module, no compression), at other costs. Its tests are the floor's, with each key as
the index stores it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack
import zstandard

from castore import Store, stored_key
from castore._storage.store import internals

RAW_CONFTEST = '''"""The raw floor: bench/raw_floor.py says what it measures."""
import json
import os
from pathlib import Path

import blake3
import msgpack
import pytest
import zstandard

INDEXES = Path({indexes!r})
TABLE = Path(__file__).resolve().parent.parent / "values" / "frames.msgpack"


@pytest.fixture(scope="session")
def frames():
    table = msgpack.unpackb(TABLE.read_bytes(), strict_map_key=False)
    files = [os.open(path, os.O_RDONLY) for path in table["files"]]
    decompressors = {{0: zstandard.ZstdDecompressor()}}
    for number, data in table["dictionaries"].items():
        dictionary = zstandard.ZstdCompressionDict(data)
        decompressors[number] = zstandard.ZstdDecompressor(dict_data=dictionary)
    yield table["blobs"], files, decompressors
    for file in files:
        os.close(file)


@pytest.fixture
def recorded(request, frames):
    blobs, files, decompressors = frames
    index = os.open(INDEXES / (request.path.stem + ".json"), os.O_RDONLY)
    try:
        entries = json.loads(os.read(index, os.fstat(index).st_size).decode())["entries"]
    finally:
        os.close(index)
    values = {{}}
    for key, entry in entries.items():
        digest = entry["blob"]
        number, offset, length = blobs[digest]
        frame = os.pread(files[number], length, offset)
        dictionary = zstandard.get_frame_parameters(frame).dict_id
        packed = decompressors[dictionary].decompress(frame)
        if blake3.blake3(packed).hexdigest() != digest:
            raise ValueError(f"blob {{digest}} does not match its digest")
        values[key] = msgpack.unpackb(packed, strict_map_key=False)
    return values
'''


def frame_table(store: Path, digests: Iterable[str]) -> dict[str, Any]:
    """Where each of ``digests`` sits: ``blobs`` maps a digest to (file number, offset,
    length) in ``files`` (packs, and loose blob files read whole), with the zstd
    ``dictionaries`` its frames need. Only the files that hold one of them are listed."""
    core = internals(Store(store))
    packs = core.reader.blobs.packs
    slots: dict[str, tuple[str, int, int, int]] = {}
    for name, index in packs.indexes().items():
        for digest, slot in index.slots.items():
            slots.setdefault(digest, (name, slot.offset, slot.length, index.dictionary))
    files: list[str] = []
    numbers: dict[str, int] = {}
    blobs: dict[str, tuple[int, int, int]] = {}
    dictionaries: set[int] = set()
    for digest in digests:
        if digest in slots:
            name, offset, length, dictionary = slots[digest]
            path = str(packs.pack_path(name))
        else:  # a loose blob: the whole file is its frame
            loose = core.reader.blobs.loose.location(digest)
            frame = loose.read_bytes()
            path, offset, length = str(loose), 0, len(frame)
            dictionary = zstandard.get_frame_parameters(frame).dict_id
        if path not in numbers:
            numbers[path] = len(files)
            files.append(path)
        blobs[digest] = (numbers[path], offset, length)
        if dictionary:
            dictionaries.add(dictionary)
    return {
        "files": files,
        "blobs": blobs,
        "dictionaries": {n: core.compression.dictionary_bytes(n) for n in sorted(dictionaries)},
    }


def write_raw_suite(
    folder: Path, store: Path, modules: dict[str, list[tuple[str, int]]], ini: str
) -> Path:
    """A raw-floor suite in ``folder`` for ``modules`` (test module -> its calls as
    (key, status code)), reading castore's ``store``; ``ini`` is its pytest.ini."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tests").mkdir(parents=True)
    (folder / "values").mkdir()
    (folder / "pytest.ini").write_text(ini)
    indexes = store.absolute() / "index" / "tests"
    (folder / "tests" / "conftest.py").write_text(RAW_CONFTEST.format(indexes=str(indexes)))
    digests: list[str] = []
    store_handle = Store(store)
    for module, calls in modules.items():
        checks = []
        for key, status in calls:
            stored = stored_key(key)
            entry = store_handle.entry(f"tests/{module}", key)
            if entry is None:
                raise RuntimeError(f"{module}: castore's store has no entry for {key!r}")
            digests.append(entry.blob)
            checks.append(f"    assert get({stored!r})['status']['code'] == {status}")
        (folder / "tests" / f"{module}.py").write_text(
            "def test_replay(recorded):\n    get = recorded.__getitem__\n"
            + "\n".join(checks)
            + "\n"
        )
    table = frame_table(store, dict.fromkeys(digests))
    (folder / "values" / "frames.msgpack").write_bytes(msgpack.packb(table))
    return folder
