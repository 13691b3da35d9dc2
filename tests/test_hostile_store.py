"""A store pulled from someone else's branch: hostile blobs and files at store paths end in
a castore error that names the file, never in a crash, a hang or a raw exception."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner, Result
from conftest import quick_store

from castore import Entry, Store
from castore._storage.codec import MAX_EXT_DEPTH, MAX_VALUE_OBJECTS, digest
from castore._storage.index import now
from castore._storage.store import internals
from castore._upkeep.jsonview import MAX_VIEW_DEPTH
from castore._upkeep.verify import FaultKind, verify
from castore.cli import main
from castore.errors import CorruptBlobError, IndexFormatError, UnencodableValueError

NAMESPACE = "tests/test_hostile"


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A FIFO once hung reads forever: fail such a regression in 20 s instead."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the read hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def plant(store: Store, key: str, packed: bytes) -> Path:
    """Record raw msgpack bytes as a blob named by their true digest, as a branch could."""
    entry = Entry(blob=digest(packed), size=len(packed), recorded_at=now())
    internals(store).writer.put_entry(NAMESPACE, key, entry, packed)
    return internals(store).blobs.location(entry.blob)


def nested_tuples(depth: int) -> bytes:
    packed = msgpack.packb(1)
    for _ in range(depth):
        packed = msgpack.packb(msgpack.ExtType(4, b"\x91" + packed))
    return packed


def test_extensions_nested_200_deep_are_refused_not_a_segfault(tmp_path: Path) -> None:
    """The campaign's SIGSEGV: each level was a fresh msgpack unpacker on the C stack."""
    store = Store(tmp_path / "store")
    plant(store, "deep", nested_tuples(200))
    child = textwrap.dedent(
        f"""
        from castore import Store
        from castore.errors import CorruptBlobError
        try:
            Store({str(store.root)!r}).get({NAMESPACE!r}, "deep")
        except CorruptBlobError as error:
            print("refused:", error)
        """
    )
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=False)
    assert run.returncode == 0, (run.returncode, run.stderr)
    assert "refused:" in run.stdout
    assert f"nest more than {MAX_EXT_DEPTH} deep" in run.stdout
    assert "key 'deep'" in run.stdout


def test_extensions_nested_to_the_limit_still_read(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    value: object = 1
    for _ in range(MAX_EXT_DEPTH):
        value = (value,)
    store.put(NAMESPACE, "deep but fine", value)
    assert Store(store.root).get(NAMESPACE, "deep but fine") == value


@pytest.mark.parametrize(
    ("name", "packed"),
    [
        ("huge timedelta", msgpack.packb(msgpack.ExtType(8, msgpack.packb([10**18, 0, 0])))),
        ("timedelta of two", msgpack.packb(msgpack.ExtType(8, msgpack.packb([1, 2])))),
        ("timedelta of text", msgpack.packb(msgpack.ExtType(8, msgpack.packb(["a", 0, 0])))),
        ("tuple of a map", msgpack.packb(msgpack.ExtType(4, msgpack.packb({"a": 1})))),
        ("bad datetime", msgpack.packb(msgpack.ExtType(2, b"9999-99-99"))),
        ("undecodable date", msgpack.packb(msgpack.ExtType(3, b"\xff\xfe"))),
        ("unknown extension", msgpack.packb(msgpack.ExtType(99, b""))),
    ],
)
def test_a_hostile_extension_is_a_corrupt_blob_for_get_and_for_verify(
    tmp_path: Path, name: str, packed: bytes
) -> None:
    store = Store(tmp_path / "store")
    path = plant(store, name, packed)
    with pytest.raises(CorruptBlobError, match=f"key '{name}'"):
        Store(store.root).get(NAMESPACE, name)
    faults = verify(Store(store.root)).faults
    assert [(fault.kind, fault.path) for fault in faults] == [(FaultKind.CORRUPT, path)]


def test_msgpacks_own_timestamp_reads_as_an_aware_utc_datetime(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    stamp = msgpack.Timestamp.from_unix_nano(1_700_000_000_123_456_000)
    plant(store, "stamp", msgpack.packb({"at": stamp}, datetime=False))
    value = Store(store.root).get(NAMESPACE, "stamp")
    assert value == {"at": dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)}
    assert verify(Store(store.root)).faults == []


# --- memory: a small blob must not cost gigabytes ------------------------------------------

MEMORY_CHILD = """
import resource, sys, zstandard
from castore import Store
from castore.errors import CastoreError
store = Store(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    store.get(sys.argv[2], sys.argv[3])
    outcome = "read"
except CastoreError as error:
    outcome = f"refused: {error}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(outcome)
print(peak // 1024)
"""


def array_of(count: int, item: bytes) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big") + item * count


#: Each case is built when its test runs (a function here): built at collection, their
#: 240 MB of msgpack cost every process that collects this module 0.34 s of CPU.
OBJECT_BOMBS: list[tuple[str, Callable[[], bytes]]] = [
    ("20 million empty maps", lambda: array_of(20_000_000, b"\x80")),
    ("100 million nils", lambda: array_of(100_000_000, b"\xc0")),
    ("nils in 40 arrays", lambda: array_of(40, array_of(2_500_000, b"\xc0"))),
    ("maps in a tuple", lambda: msgpack.packb(msgpack.ExtType(4, array_of(20_000_000, b"\x80")))),
]


@pytest.mark.parametrize(
    ("name", "build"),
    OBJECT_BOMBS,
    ids=[f"{name}-packed{number}" for number, (name, _) in enumerate(OBJECT_BOMBS)],
)
def test_a_frame_of_a_few_kb_that_unpacks_to_millions_of_objects_is_refused_cheaply(
    tmp_path: Path, run_python, name: str, build: Callable[[], bytes]
) -> None:
    """The campaign's 1.4 GB case: max_value_bytes bounds bytes, this bounds objects (the
    byte limit is raised here so that the object count is what refuses)."""
    packed = build()
    # zstd level 3 (quick_store): at 19, compressing the 100 MB of nils costs 0.5 s.
    store = Store(quick_store(tmp_path / "store").root, max_value_bytes=2**30)
    path = plant(store, name, packed)
    assert path.stat().st_size < 100_000  # zstd squeezes it to almost nothing
    run = run_python(
        MEMORY_CHILD, str(store.root), NAMESPACE, name, env={"CASTORE_MAX_VALUE_BYTES": "1GiB"}
    )
    outcome, peak_mib = run.stdout.splitlines()
    assert outcome.startswith("refused:"), outcome
    assert f"more than {MAX_VALUE_OBJECTS:,} objects" in outcome
    assert f"key '{name}'" in outcome
    # The decompressed msgpack itself is up to 100 MB; the objects add at most ~300 MB.
    assert int(peak_mib) < 100 + len(packed) // 2**20 + 350, peak_mib


def test_a_value_with_a_million_objects_still_reads(tmp_path: Path) -> None:
    """The bound sits far above real responses: an embedding response of 1.5 M floats."""
    store = quick_store(tmp_path / "store")  # zstd level 3: what is read is the point
    value = {"data": [{"embedding": [0.5 + n] * 1536} for n in range(1000)]}
    store.put(NAMESPACE, "embeddings", value)
    assert Store(store.root).get(NAMESPACE, "embeddings") == value


def test_a_frame_without_a_declared_size_decompresses_in_one_copy(
    tmp_path: Path, run_python
) -> None:
    """The campaign's 510 MB frame peaked at twice that when chunks were joined."""
    child = """
        import resource, zstandard
        from castore._storage.frames import Decompressor
        stream = zstandard.ZstdCompressor(write_content_size=False).compressobj()
        chunk = b"x" * (1 << 20)
        frame = b"".join(stream.compress(chunk) for _ in range(256)) + stream.flush()
        del chunk
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = Decompressor(1 << 30, lambda number: b"").decompress(frame)
        print(len(out) >> 20, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)
    """
    size_mib, peak_mib = map(int, run_python(child).stdout.split())
    assert size_mib == 256
    assert peak_mib < 256 * 1.2, peak_mib


# --- what sits at a store path -------------------------------------------------------------


def replace_with(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink loop":
        path.symlink_to(path.name)


SPECIAL = ["symlink to /dev/zero", "fifo", "directory", "symlink loop"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_at_a_blob_path_is_refused_by_name(tmp_path: Path, kind: str) -> None:
    store = Store(tmp_path / "store")
    entry = store.put(NAMESPACE, "k", {"answer": 42})
    path = internals(store).blobs.location(entry.blob)
    replace_with(path, kind)
    with pytest.raises(CorruptBlobError) as raised:
        Store(store.root).get(NAMESPACE, "k")
    assert str(path) in str(raised.value)
    assert "key 'k'" in str(raised.value)


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_at_an_index_path_is_refused_by_name(tmp_path: Path, kind: str) -> None:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "k", {"answer": 42})
    path = internals(store).indexes.path(NAMESPACE)
    replace_with(path, kind)
    with pytest.raises(IndexFormatError) as raised:
        Store(store.root).get(NAMESPACE, "k")
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_as_castore_json_is_refused_by_name(tmp_path: Path, kind: str) -> None:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "k", {"answer": 42})
    path = store.root / "castore.json"
    replace_with(path, kind)
    with pytest.raises(IndexFormatError) as raised:
        Store(store.root)
    assert str(path) in str(raised.value)


def test_an_index_over_its_size_cap_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "k", {"answer": 42})
    size = internals(store).indexes.path(NAMESPACE).stat().st_size
    monkeypatch.setattr("castore._storage.index.MAX_INDEX_BYTES", size - 1)
    with pytest.raises(IndexFormatError, match=f"it is {size} bytes, over"):
        Store(store.root).get(NAMESPACE, "k")


# --- index files that json.loads alone would accept or crash on ----------------------------


def index_with(store: Store, entry_json: str) -> Path:
    path = internals(store).indexes.path(NAMESPACE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"castore_index": 1, "entries": {"k": ' + entry_json + "}}\n")
    return path


GOOD_BLOB = "a" * 64


@pytest.mark.parametrize(
    ("name", "entry_json", "expected"),
    [
        (
            "NaN duration",
            f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": '
            '"2025-01-01T00:00:00Z", "duration": NaN}',
            "NaN is not a number",
        ),
        (
            "Infinity duration",
            f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": '
            '"2025-01-01T00:00:00Z", "duration": Infinity}',
            "Infinity is not a number",
        ),
        (
            "1e999 duration",
            f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": '
            '"2025-01-01T00:00:00Z", "duration": 1e999}',
            "'duration' must be a number",
        ),
        (
            "5000-digit size",
            f'{{"blob": "{GOOD_BLOB}", "size": {"9" * 5000}, "recorded_at": '
            '"2025-01-01T00:00:00Z"}',
            "an integer of 5000 digits",
        ),
        (
            "lone surrogate",
            f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": '
            '"2025-01-01T00:00:00Z", "schema": "v\\ud800"}',
            "lone UTF-16 surrogate",
        ),
        (
            "overflowing offset",
            f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": "9999-12-31T23:59:59-23:59"}}',
            "'recorded_at' must be an ISO 8601 time",
        ),
        ("100,000 deep", "[" * 100_000 + "]" * 100_000, "nests too deep"),
    ],
)
def test_an_index_json_loads_would_accept_or_crash_on_is_refused_by_name(
    tmp_path: Path, name: str, entry_json: str, expected: str
) -> None:
    store = Store(tmp_path / "store")
    path = index_with(store, entry_json)
    with pytest.raises(IndexFormatError, match=re.escape(expected)) as raised:
        Store(store.root).entry(NAMESPACE, "k")
    assert str(path) in str(raised.value)


def test_a_long_integer_is_refused_even_where_python_lifts_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's own int-to-string limit refuses a 5000-digit integer cheaply; a process
    that lifted it (``sys.set_int_max_str_digits(0)``) still gets castore's refusal,
    since a process with the default limit could never read the file."""
    monkeypatch.setattr(sys, "get_int_max_str_digits", lambda: 0)
    store = Store(tmp_path / "store")
    index_with(
        store,
        f'{{"blob": "{GOOD_BLOB}", "size": {"9" * 5000}, "recorded_at": "2025-01-01T00:00:00Z"}}',
    )
    with pytest.raises(IndexFormatError, match="an integer of 5000 digits"):
        Store(store.root).entry(NAMESPACE, "k")


@pytest.mark.parametrize(
    "encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-32-le"]
)
def test_an_index_in_another_json_encoding_still_reads(tmp_path: Path, encoding: str) -> None:
    """JSON allows UTF-16 and UTF-32 and a byte-order mark, and an editor may save one."""
    store = Store(tmp_path / "store")
    path = index_with(
        store, f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": "2025-01-01T00:00:00Z"}}'
    )
    path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))
    entry = Store(store.root).entry(NAMESPACE, "k")
    assert entry is not None and entry.blob == GOOD_BLOB


@pytest.mark.parametrize(
    ("before", "after", "reads"),
    [
        (" \n\t", "", True),
        ("", "\n\n \r\n", True),
        ("", "\n{}", False),
        ("", "\nx", False),
        ("\n", "]", False),
    ],
)
def test_whitespace_around_an_index_reads_and_anything_else_is_refused(
    tmp_path: Path, before: str, after: str, reads: bool
) -> None:
    """What json.loads accepts around the document (whitespace), castore accepts; a second
    document or stray characters after it are refused with the file's name."""
    store = Store(tmp_path / "store")
    path = index_with(
        store, f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": "2025-01-01T00:00:00Z"}}'
    )
    path.write_text(before + path.read_text(encoding="utf-8") + after, encoding="utf-8")
    if reads:
        entry = Store(store.root).entry(NAMESPACE, "k")
        assert entry is not None and entry.blob == GOOD_BLOB
    else:
        with pytest.raises(IndexFormatError, match="Extra data") as raised:
            Store(store.root).entry(NAMESPACE, "k")
        assert str(path) in str(raised.value)


def test_an_index_with_escaped_emoji_still_reads(tmp_path: Path) -> None:
    """Surrogate pairs are fine; only lone halves are refused."""
    store = Store(tmp_path / "store")
    index_with(
        store,
        f'{{"blob": "{GOOD_BLOB}", "size": 1, "recorded_at": "2025-01-01T00:00:00Z", '
        '"schema": "v\\ud83d\\ude00"}',
    )
    entry = Store(store.root).entry(NAMESPACE, "k")
    assert entry is not None and entry.schema == "v\N{GRINNING FACE}"


def test_metadata_json_cannot_read_back_is_refused_before_writing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(UnencodableValueError):
        store.put(NAMESPACE, "k", 1, metadata={"n": 10**5000})
    assert not (store.root / "index").exists()


# --- show, cat and export of values JSON cannot carry ---------------------------------------


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(main, ["--root", str(store.root), *args])


def test_show_and_cat_display_a_value_nested_1000_deep_without_a_recursion_error(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    path = plant(store, "deep", b"\x91" * 1000 + b"\xc0")
    shown = cli(store, "show", NAMESPACE, "deep")
    assert shown.exit_code == 0, shown.output
    assert f"nested deeper than {MAX_VIEW_DEPTH} levels" in shown.output
    assert shown.output.count("[") == MAX_VIEW_DEPTH + 1
    catted = cli(store, "cat", str(path))
    assert catted.exit_code == 0, catted.output
    assert catted.output == shown.output


def test_show_displays_a_100_000_byte_integer_as_not_shown(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "big", {"n": 1 << 800_000, "small": 10**4000})
    shown = cli(store, "show", NAMESPACE, "big")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {
        "n": {"$not_shown": "an integer of about 240825 digits"},
        "small": 10**4000,
    }


def test_export_refuses_what_json_cannot_carry_exactly_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "fine", {"answer": 1})
    plant(store, "deep", b"\x91" * 1000 + b"\xc0")
    out = tmp_path / "export.json"
    result = cli(store, "export", NAMESPACE, "-o", str(out))
    assert result.exit_code == 3
    assert "cannot export namespace 'tests/test_hostile', key 'deep'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("key", ["", "9" * 101])
def test_an_index_key_castore_could_never_look_up_is_refused_by_name(
    tmp_path: Path, key: str
) -> None:
    """Found by the fuzz campaign: a 101-character key read fine, verify passed, and get
    could never find it, because get shortens keys over 100 characters."""
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "k", 1)
    path = internals(store).indexes.path(NAMESPACE)
    path.write_text(path.read_text().replace('"k":', json.dumps(key) + ":"))
    with pytest.raises(IndexFormatError, match="castore writes keys of 1 to 100 characters"):
        Store(store.root).entries(NAMESPACE)
    report = verify(Store(store.root))
    assert [fault.kind for fault in report.faults] == [FaultKind.INDEX]
    assert report.upkeep == []  # its blob is not called an orphan on an unreadable index


@pytest.mark.parametrize(
    ("field", "value"),
    [("duration", float("nan")), ("duration", -5.0), ("schema", [1]), ("stream", "sideways")],
)
def test_a_put_that_would_write_an_unreadable_index_is_refused_before_writing(
    tmp_path: Path, field: str, value: object
) -> None:
    """Every path that writes applies the checks every reader applies."""
    store = Store(tmp_path / "store")
    store.put(NAMESPACE, "kept", 1)
    with pytest.raises(UnencodableValueError, match=f"'{field}' must be"):
        store.namespace(NAMESPACE).put("bad", 2, **{field: value})  # type: ignore[arg-type]
    assert dict(Store(store.root).entries(NAMESPACE)).keys() == {"kept"}
