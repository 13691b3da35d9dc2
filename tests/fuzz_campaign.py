"""The hostile-input campaign: hypothesis generates and mutates every file castore reads.

Run by tests/test_fuzz_campaign.py in a child process, one target per child::

    python tests/fuzz_campaign.py TARGET EXAMPLES WORKDIR MEMORY_LIMIT_BYTES

The child caps its own address space (RLIMIT_AS), so a case that tries to allocate
gigabytes fails the run with a MemoryError instead of taking the machine; a per-case
watchdog (faulthandler) kills a case that hangs and prints where. Every case must end
in a correct read or a castore error; anything else fails the hypothesis test, which
shrinks it and prints the smallest failing input. The last line printed is a JSON
summary: cases run, outcomes by error class, peak RSS.
"""

from __future__ import annotations

import base64
import faulthandler
import functools
import json
import resource
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import zstandard
from campaign import FULL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castore import Store
from castore._storage.codec import digest, pack_value
from castore._storage.index import entry_from_json
from castore._storage.store import internals
from castore._upkeep.collect import collect_garbage
from castore._upkeep.importers import export_namespace, import_paths
from castore._upkeep.jsonview import to_json_view
from castore._upkeep.packing import pack_store
from castore._upkeep.stats import store_stats
from castore._upkeep.verify import verify
from castore.errors import CastoreError

CASE_TIMEOUT_SECONDS = 20
NAMESPACE = "tests/test_fuzz"
OUTCOMES: Counter[str] = Counter()

# --- values, packed and mutated ----------------------------------------------------------

#: hypothesis's default text alphabet (every code point UTF-8 can encode: all but the
#: surrogates), named by category: the default, ``characters(codec="utf-8")``, first
#: encodes all 1.1 million code points to find them, 3.5 s of CPU in every child while
#: hypothesis has no cache of it on disk (a fresh checkout). Same characters, same draws.
TEXT = st.characters(exclude_categories=["Cs"])
json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(TEXT, max_size=40)
values = st.recursive(
    json_leaves | st.binary(max_size=40) | st.datetimes() | st.dates() | st.timedeltas(),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(TEXT, max_size=10), inner, max_size=6)
        | st.frozensets(st.integers() | st.text(TEXT, max_size=5), max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after a few byte-level edits: flips, overwrites, inserts, cuts."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from(
                    [
                        b"\xdd\xff\xff\xff\xff",
                        b"\xc7\x01\x04",
                        b"\xd4\xff\x00",
                        b"\xdf\x7f\xff\xff\xff",
                    ]
                )
            )
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[position:]
        elif kind == "repeat":
            data[position:position] = data[position : position + 32] * draw(st.integers(1, 64))
    return bytes(data)


def ext(code: int, payload: bytes) -> bytes:
    """An ext 32 token by hand: msgpack-python refuses negative codes such as -1."""
    return (
        b"\xc9" + len(payload).to_bytes(4, "big") + code.to_bytes(1, "big", signed=True) + payload
    )


@st.composite
def hostile_msgpack(draw: st.DrawFn) -> bytes:
    """msgpack bytes castore never writes: nested extensions, bombs, bad payloads."""
    choice = draw(st.integers(0, 5))
    if choice == 0:  # castore's own encoding, then mutated
        return draw(mutated(pack_value(draw(values))))
    if choice == 1:  # arbitrary bytes
        return draw(st.binary(max_size=300))
    if choice == 2:  # container extensions nested deep
        packed = draw(st.sampled_from([msgpack.packb(1), b"\x90", b"\xc0"]))
        for _ in range(draw(st.integers(1, 300))):
            code = draw(st.sampled_from([4, 5, 6, 8]))
            packed = ext(code, b"\x91" + packed)
        return packed
    if choice == 3:  # an extension with a hostile payload
        code = draw(st.sampled_from([-1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 127]))
        payload = draw(
            st.binary(max_size=40)
            | st.builds(msgpack.packb, st.lists(st.integers(-(2**63), 2**64 - 1), max_size=4))
            | st.builds(lambda n: msgpack.packb([n, n, n]), st.integers(-(2**63), 2**64 - 1))
        )
        return ext(code, payload)
    if choice == 4:  # a tiny frame of millions of objects
        count = draw(st.sampled_from([10, 70_000, 1_100_000, 5_000_000, 20_000_000]))
        item = draw(st.sampled_from([b"\x80", b"\x90", b"\xc0", b"\xa0", b"\x91\x80"]))
        return b"\xdd" + count.to_bytes(4, "big") + item * count
    # deep plain arrays and maps
    depth = draw(st.integers(1, 3000))
    opener = draw(st.sampled_from([b"\x91", b"\x81\xa1k"]))
    return opener * depth + b"\xc0"


# --- the operations every case runs ------------------------------------------------------


def attempt(name: str, operation: Callable[[], Any]) -> Any:
    """Run one operation: a castore error is a correct outcome, counted by class."""
    try:
        result = operation()
    except CastoreError as error:
        OUTCOMES[f"{name}: {type(error).__name__}"] += 1
        return error
    OUTCOMES[f"{name}: ok"] += 1
    return result


def exercise(root: Path) -> None:
    """Read, show, check and clean a store the way users and castore's upkeep do."""
    opened = attempt("open", lambda: Store(root))
    if isinstance(opened, CastoreError):
        return
    store: Store = opened
    refused: set[tuple[str, str]] = set()
    namespaces = attempt("namespaces", store.namespaces)
    for namespace in [] if isinstance(namespaces, CastoreError) else namespaces:
        entries = attempt("entries", lambda ns=namespace: dict(store.entries(ns)))
        if isinstance(entries, CastoreError):
            continue
        for key in entries:
            value = attempt("get", lambda ns=namespace, k=key: store.get(ns, k))
            if isinstance(value, CastoreError):
                refused.add((namespace, key))
            else:
                json.dumps(to_json_view(value))  # show/cat never raise on a readable value
        attempt("export", lambda ns=namespace: export_namespace(store, ns))
    report = attempt("verify", lambda: verify(Store(root)))
    if not isinstance(report, CastoreError) and not report.faults:
        # verify must find every blob that get refuses.
        assert not refused, f"verify saw no fault, get refused {sorted(refused)}"
    attempt("stats", lambda: store_stats(Store(root)))
    attempt("gc --dry-run", lambda: collect_garbage(Store(root), dry_run=True))


class Case:
    """A fresh store directory per case, removed afterwards; a watchdog per case."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def __enter__(self) -> Path:
        faulthandler.dump_traceback_later(CASE_TIMEOUT_SECONDS, exit=True)
        self.root = Path(tempfile.mkdtemp(dir=self.workdir)) / "store"
        return self.root

    def __exit__(self, *exc: object) -> None:
        faulthandler.cancel_dump_traceback_later()
        shutil.rmtree(self.root.parent, ignore_errors=True)
        OUTCOMES["cases"] += 1


def sample_store(workdir: Path) -> Store:
    """A store of the base entries to take originals from (not a case)."""
    return base_store(Path(tempfile.mkdtemp(dir=workdir)) / "store")


def base_store(root: Path) -> Store:
    """A store of two entries at ``root`` (a case's folder in the campaign's workdir): a
    copy of :func:`written_base` (each case used to write its own, two durable puts that
    were a quarter of its time)."""
    shutil.copytree(written_base(root.parent.parent), root, symlinks=True)
    return Store(root)


@functools.cache
def written_base(workdir: Path) -> Path:
    """The base store, written by castore once per workdir."""
    template = Path(tempfile.mkdtemp(prefix="template-", dir=workdir)) / "store"
    store = Store(template)
    store.put(NAMESPACE, "first", {"choices": [{"text": "hello"}], "usage": 3})
    store.put(NAMESPACE, "second", ["a", ("b", 2)])
    return template


def plant_packed(store: Store, key: str, packed: bytes, *, frame: bytes | None = None) -> None:
    """An entry whose blob holds ``packed`` (or a raw ``frame``), named by the digest."""
    blob = digest(packed)
    entry = entry_from_json(
        {"blob": blob, "size": len(packed), "recorded_at": "2025-01-01T00:00:00+00:00"},
        Path("planted"),
        key,
    )
    internals(store).writer.put_entry(NAMESPACE, key, entry, packed)
    if frame is not None:
        path = internals(store).blobs.location(blob)
        path.chmod(0o644)
        path.write_bytes(frame)


# --- targets ---------------------------------------------------------------------------


def campaign_settings(examples: int) -> settings:
    """Every target's hypothesis settings: ``examples`` cases, no deadline (the watchdog
    bounds each case), no example database on disk, and no health check (the cases are
    slow and large on purpose). At CI size the cases are the same on every run
    (``derandomize``): a CI failure can be run again, and the suite's time does not swing
    with the draw (the msgpack target took 4 to 27 s); the full campaign draws anew."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not FULL,
    )


def target_msgpack(examples: int, workdir: Path) -> Callable[[], None]:
    @campaign_settings(examples)
    @given(packed=hostile_msgpack())
    def case(packed: bytes) -> None:
        with Case(workdir) as root:
            plant_packed(base_store(root), "hostile", packed)
            exercise(root)

    return case


def target_frames(examples: int, workdir: Path) -> Callable[[], None]:
    compressors = [
        zstandard.ZstdCompressor(level=3),
        zstandard.ZstdCompressor(level=3, write_content_size=False),
    ]

    @st.composite
    def frames(draw: st.DrawFn) -> tuple[bytes, bytes]:
        packed = pack_value(draw(values))
        frame = draw(st.sampled_from(compressors)).compress(packed)
        return packed, draw(mutated(frame) | st.binary(max_size=200) | st.just(frame))

    @campaign_settings(examples)
    @given(pair=frames())
    def case(pair: tuple[bytes, bytes]) -> None:
        packed, frame = pair
        with Case(workdir) as root:
            plant_packed(base_store(root), "framed", packed, frame=frame)
            exercise(root)

    return case


INDEX_TOKENS = [
    b"NaN",
    b"Infinity",
    b"-1e999",
    b"9" * 5000,
    b'"\\ud800"',
    b"[" * 5000,
    b"{}",
    b"null",
    b'"blob"',
    b'"' + b"a" * 64 + b'"',
    b"true",
    b"\x00",
    b"\xff",
]


def target_index(examples: int, workdir: Path) -> Callable[[], None]:
    store = sample_store(workdir)
    original = internals(store).indexes.path(NAMESPACE).read_bytes()
    entries = dict(store.entries(NAMESPACE))
    json_values = st.recursive(
        json_leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(TEXT, max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )

    @st.composite
    def index_files(draw: st.DrawFn) -> bytes:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return draw(mutated(original))
        if choice == 1:  # a token planted at a random place
            position = draw(st.integers(0, len(original)))
            return original[:position] + draw(st.sampled_from(INDEX_TOKENS)) + original[position:]
        if choice == 2:  # a field of a real entry replaced by any JSON value
            key = draw(st.sampled_from(sorted(entries)))
            data = entries[key].to_json()
            data[draw(st.sampled_from([*sorted(data), "stream", "schema", "duration"]))] = draw(
                json_values
            )
            text = json.dumps({"castore_index": 1, "namespace": NAMESPACE, "entries": {key: data}})
            return text.encode()
        return draw(st.builds(lambda v: json.dumps(v).encode(), json_values))

    @campaign_settings(examples)
    @given(raw=index_files())
    def case(raw: bytes) -> None:
        with Case(workdir) as root:
            store = base_store(root)
            internals(store).indexes.path(NAMESPACE).write_bytes(raw)
            exercise(root)
            attempt("put", lambda: Store(root).put(NAMESPACE, "after", "value"))

    return case


def target_config(examples: int, workdir: Path) -> Callable[[], None]:
    original = (sample_store(workdir).root / "castore.json").read_bytes()
    document = json.loads(original)
    fields = st.sampled_from(["castore_store", "compression", "dictionaries"])
    json_values = st.recursive(
        json_leaves,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(TEXT, max_size=6), inner, max_size=3)
        ),
        max_leaves=8,
    )

    @st.composite
    def configs(draw: st.DrawFn) -> bytes:
        if draw(st.booleans()):
            return draw(mutated(original))
        changed = dict(document)
        changed[draw(fields)] = draw(
            json_values
            | st.just({"1": "../../outside/secret"})
            | st.just({"level": 99})
            | st.just({"dictionary": 5})
        )
        return json.dumps(changed).encode()

    @campaign_settings(examples)
    @given(raw=configs())
    def case(raw: bytes) -> None:
        with Case(workdir) as root:
            base_store(root)
            (root / "castore.json").write_bytes(raw)
            exercise(root)
            attempt("put", lambda: Store(root).put(NAMESPACE, "after", "value"))

    return case


CASSETTE = b"""interactions:
- request:
    body: '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
    headers: &h {content-type: [application/json]}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {string: '{"choices": [{"message": {"content": "hello"}}]}'}
    headers: *h
    status: {code: 200, message: OK}
version: 1
"""


def target_imports(examples: int, workdir: Path) -> Callable[[], None]:
    exported = json.dumps(export_namespace(sample_store(workdir), NAMESPACE)).encode()
    seeds = json.dumps(
        {"hash_1": {"response": {"text": "hi"}, "original_key": "k", "metadata": {"model": "m"}}}
    ).encode()
    tagged = st.sampled_from(
        [
            {"$base64": "!!!"},
            {"$base64": base64.b64encode(b"ok").decode()},
            {"$tuple": 5},
            {"$set": [[1]]},
            {"$map": [[1, 2], [3]]},
            {"$timedelta": [10**18, 0, 0]},
            {"$float": "inf"},
            {"$datetime": "9999-12-31T23:59:59-23:59"},
            {"$bytes": 5},
        ]
    )
    laughs = (
        b"a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + b"".join(
            f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n".encode()
            for n in range(9)
        )
        + b"interactions: [{request: {}, response: *j}]\n"
    )

    @st.composite
    def import_files(draw: st.DrawFn) -> tuple[str, bytes]:
        choice = draw(st.integers(0, 4))
        if choice == 0:
            return "export.json", draw(mutated(exported))
        if choice == 1:
            return "seeds.json", draw(mutated(seeds))
        if choice == 2:
            return "cassette.yaml", draw(mutated(CASSETTE) | st.just(laughs))
        if choice == 3:
            document = json.loads(exported)
            key = next(name for name in document if not name.startswith("$"))
            field = draw(
                st.sampled_from(
                    [
                        "response",
                        "recorded_at",
                        "duration",
                        "schema",
                        "stream",
                        "metadata",
                        "original_key",
                    ]
                )
            )
            document[key][field] = draw(tagged | json_leaves)
            return "export.json", json.dumps(document).encode()
        return "cassette.yaml", draw(st.binary(max_size=200))

    @campaign_settings(examples)
    @given(named=import_files())
    def case(named: tuple[str, bytes]) -> None:
        name, raw = named
        with Case(workdir) as root:
            source = root.parent / name
            source.write_bytes(raw)
            imported = attempt("import", lambda: import_paths(Store(root), [source]))
            if not isinstance(imported, CastoreError) and root.exists():
                # What import accepted must read back whole: no silent acceptance.
                report = verify(Store(root))
                assert not report.faults, report.faults
                for namespace in Store(root).namespaces():
                    for key in Store(root).entries(namespace):
                        Store(root).get(namespace, key)

    return case


def target_packs(examples: int, workdir: Path) -> Callable[[], None]:
    """A packed store whose pack or pack index is mutated: every read is exact or a
    castore error, and verify reports whatever get refuses."""
    sample = sample_store(workdir)
    for number in range(20):
        sample.put(NAMESPACE, f"more {number}", {"n": number, "text": "pack me " * number})
    pack_store(sample)
    (pack,) = (sample.root / "packs").glob("*.pack")
    originals = {"pack": pack.read_bytes(), "idx": pack.with_suffix(".idx").read_bytes()}

    @campaign_settings(examples)
    @given(which=st.sampled_from(["pack", "idx"]), data=st.data())
    def case(which: str, data: st.DataObject) -> None:
        with Case(workdir) as root:
            shutil.copytree(sample.root, root)
            target = root / "packs" / f"{pack.stem}.{which}"
            target.write_bytes(data.draw(mutated(originals[which])))
            exercise(root)
            attempt("pack", lambda: pack_store(Store(root)))
            attempt("gc", lambda: collect_garbage(Store(root)))

    return case


TARGETS = {
    "msgpack": target_msgpack,
    "frames": target_frames,
    "index": target_index,
    "config": target_config,
    "imports": target_imports,
    "packs": target_packs,
}


def main() -> None:
    target, examples, workdir, memory_limit = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
    )
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    faulthandler.enable()
    TARGETS[target](examples, Path(workdir))()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "target": target,
                "cases": OUTCOMES.pop("cases"),
                "peak_rss": peak,
                "outcomes": dict(sorted(OUTCOMES.items())),
            }
        )
    )


if __name__ == "__main__":
    main()
