"""The measurements: footprint, git cost of re-recording, replay time, latency, memory, zstd.

Times are taken over repeated runs, interleaved between approaches so that machine noise
hits all of them alike, and summarised as median with min and max (:func:`summary`).
Sizes are deterministic: one run, min = median = max.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import blake3
import msgpack
import zstandard

from bench.corpus import rerecorded
from bench.suites import APPROACHES, SEEDS_CONFTEST, Suites, seeds_document, vcr_document
from castore import Recorder, Store
from castore._storage.store import internals
from castore._upkeep.collect import collect_garbage
from castore._upkeep.dictionary_training import COVER_D, COVER_K
from castore._upkeep.retraining import DEFAULT_DICTIONARY_SIZE

# The floor the issue sets: a 110 KB dictionary from zstd's own parameter search.
DICTIONARY_SIZE = 110 * 1024


def summary(values: Iterable[float]) -> dict[str, Any]:
    runs = list(values)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


# --- footprint ---------------------------------------------------------------------


def tree_size(folder: Path) -> dict[str, int]:
    """Bytes of the files (apparent and allocated on disk) and how many files, leaving out
    castore's git-ignored local state."""
    apparent = allocated = files = 0
    for path in folder.rglob("*"):
        if ".castore" in path.relative_to(folder).parts or not path.is_file():
            continue
        stat = path.stat()
        apparent += stat.st_size
        allocated += stat.st_blocks * 512
        files += 1
    return {"bytes": apparent, "allocated": allocated, "files": files}


class GitRepo:
    """A repository whose work tree is an approach's fixture directory."""

    def __init__(self, git_dir: Path, work_tree: Path) -> None:
        self.git_dir, self.work_tree = git_dir, work_tree
        self.run("init", "-q")

    def run(self, *args: str) -> str:
        command = [
            "git", "-c", "user.name=bench", "-c", "user.email=bench@castore.invalid",
            "-c", "gc.auto=0", "-c", "core.autocrlf=false",
            f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}", *args,
        ]  # fmt: skip
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def commit_and_pack(self, message: str) -> int:
        """Commit everything, `git gc`, and return the bytes of the packed repository."""
        self.run("add", "-A")
        self.run("commit", "-q", "--allow-empty", "-m", message)
        self.run("gc", "-q")
        return sum(
            path.stat().st_size for path in (self.git_dir / "objects").rglob("*") if path.is_file()
        )


# --- re-recording ----------------------------------------------------------------------


def choose_rerecordings(
    suites: Suites, share: float | int, seed: int
) -> dict[tuple[int, str], Any]:
    """(module number, key) -> the new response, for ``share`` of all recordings (a
    fraction) or exactly that many (an int)."""
    everything = [
        (number, item.key, item.response)
        for number, cassette in enumerate(suites.cassettes)
        for item in cassette.interactions
    ]
    rng = random.Random(seed)
    count = share if isinstance(share, int) else max(1, round(share * len(everything)))
    chosen = rng.sample(everything, count)
    return {
        (n, key): rerecorded(response, f"rerecord/{seed}/{n}/{key}") for n, key, response in chosen
    }


def adopt_rerecordings(suites: Suites, changes: dict[tuple[int, str], Any]) -> None:
    """Make re-recorded responses the suites' own, before each approach writes them."""
    for (number, key), response in changes.items():
        for item in suites.cassettes[number].interactions:
            if item.key == key:
                item.response = response


def apply_rerecordings(suites: Suites, approach: str, changes: dict[tuple[int, str], Any]) -> None:
    """Write re-recorded responses (already adopted) the way each approach records them."""
    touched = sorted({number for number, _ in changes})
    if approach == "castore":
        store = Store(suites.store)
        with store.batch():
            for (number, key), response in changes.items():
                store.put(f"tests/{suites.modules[number]}", key, response, duration=5.0)
        collect_garbage(Store(suites.store))  # as a user would before committing
    elif approach == "vcr":
        for number in touched:
            suites.cassette(number).write_text(vcr_document(suites.cassettes[number]))
    elif approach == "seeds":
        for number in touched:
            suites.seeds_file(number).write_text(seeds_document(suites.cassettes[number]))


# --- replay through pytest ----------------------------------------------------------------

# Runs pytest and writes the process's peak resident memory (VmHWM) at exit. Measured from
# inside: the rusage of a child started by this (large) process would report our own size.
_RUNNER = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
                    out.write(line.split()[1])
atexit.register(_peak)
sys.argv = ["pytest", *sys.argv[1:]]
runpy.run_module("pytest", run_name="__main__", alter_sys=True)
"""


def _pytest_environment(**extra: str) -> dict[str, str]:
    """The environment of a measured pytest run: bytecode caching on, as on a developer's
    machine, even where PYTHONDONTWRITEBYTECODE is set (it is on some CI images and here):
    otherwise every run re-compiles and assertion-rewrites every test module, and that
    compile time, not the fixtures, dominates all four suites."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**environment, **extra}


def run_pytest(folder: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS bytes) of one pytest run in ``folder``."""
    peak_file = folder / ".peak-rss"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, "-q"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_pytest_environment(BENCH_PEAK_FILE=str(peak_file)),
    )
    output = b""
    if process.stdout is not None:
        with process.stdout:
            output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"pytest failed in {folder}:\n{output.decode()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, int(peak_file.read_text()) * 1024


def replay_suites(suites: Suites, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    warming = [  # compile and cache the test modules, untimed, all suites at once
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "--collect-only"],
            cwd=suites.suite(approach),
            stdout=subprocess.DEVNULL,
            env=_pytest_environment(),
        )
        for approach in APPROACHES
    ]
    for process in warming:
        if process.wait() != 0:
            raise RuntimeError(f"collecting failed in {process.args!r}")
    results: dict[str, dict[str, list[float]]] = {
        a: {"wall": [], "cpu": [], "rss": []} for a in APPROACHES
    }
    # castore and its floor run back to back, so that their ratio sees the same machine,
    # first one then the other leading; they get extra rounds (at least five), being the
    # quick suites whose small difference is the one the noise can hide.
    rounds = max(repeat, 5)
    for run in range(rounds):
        pair = ("castore", "floor") if run % 2 == 0 else ("floor", "castore")
        approaches = (*pair, "seeds", "vcr") if run < repeat else pair
        for approach in approaches:
            wall, cpu, rss = run_pytest(suites.suite(approach))
            results[approach]["wall"].append(wall)
            results[approach]["cpu"].append(cpu)
            results[approach]["rss"].append(rss)
        walls = ", ".join(f"{a} {results[a]['wall'][-1]:.2f} s" for a in approaches)
        log(f"  replay round {run + 1}/{rounds}: {walls}")
    summaries: dict[str, Any] = {
        approach: {name: summary(values) for name, values in measured.items()}
        for approach, measured in results.items()
    }
    # castore against its floor, round by round: the two runs of a round are seconds
    # apart, so a slow spell of the machine hits both and cancels out of their ratio.
    summaries["castore/floor"] = {
        name: summary(
            mine / floor
            for mine, floor in zip(results["castore"][name], results["floor"][name], strict=True)
        )
        for name in ("wall", "cpu")
    }
    return summaries


# --- per-lookup latency, in one process ------------------------------------------------------


def _never() -> Any:
    raise AssertionError("the replay called the API")


def _best_of(times: int, run: Callable[[], float]) -> float:
    """The least of a few repetitions: the figure least disturbed by the machine."""
    return min(run() for _ in range(times))


def lookup_latency(suites: Suites, *, samples: int, repeat: int, seed: int = 3) -> dict[str, Any]:
    """Per-lookup cost in one process, each approach as a test suite would use it.

    warm: a later lookup in a test module already opened (castore: index loaded; VCR.py:
    cassette loaded; seeds: JSON file loaded). cold: the first lookup of a module (castore:
    reads and parses its index, then the blob; VCR.py: loads the cassette, then answers;
    seeds: loads the whole JSON file). Opening a castore store (castore.json and the zstd
    dictionary, once per session) is reported on its own as "open".
    """
    import httpx  # noqa: PLC0415 - a bench-only dependency

    rng = random.Random(seed)
    picks = [
        (number, item)
        for number, cassette in enumerate(suites.cassettes)
        for item in cassette.interactions
    ]
    picks = rng.sample(picks, min(samples, len(picks)))
    namespaces = [f"tests/{suites.modules[number]}" for number, _ in picks]
    conftest = suites.suite("seeds") / "tests" / "conftest.py"
    seeds_namespace: dict[str, Any] = {"__file__": str(conftest)}
    exec(compile(SEEDS_CONFTEST, str(conftest), "exec"), seeds_namespace)
    recorder_class = seeds_namespace["ResponseRecorder"]
    seeds_files = [suites.seeds_file(number) for number, _ in picks]
    cassettes = [suites.cassette(number) for number, _ in picks]
    inner = 10

    store = Store(suites.store)
    recorders = [Recorder(store, namespace) for namespace in namespaces]
    pairs = list(zip(recorders, [item.key for _, item in picks], strict=True))
    for recorder, key in pairs:
        recorder.get_or_record_sync(key, _never)
    packs = internals(store).blobs.packs
    pack_files: dict[str, int] = {}
    # Where each picked value's frame is: (pack descriptor, offset, length) for a packed
    # blob, kept open as castore keeps it; (file path, 0, -1) for a loose one.
    frames_at: list[tuple[int | str, int, int, str]] = []
    for recorder, key in pairs:
        blob = recorder.store.entry(recorder.namespace, key).blob  # type: ignore[union-attr]
        name = packs.pack_of(blob) if packs is not None else None
        if packs is not None and name is not None:
            if name not in pack_files:
                pack_files[name] = os.open(packs.pack_path(name), os.O_RDONLY)
            slot = packs.indexes()[name].slots[blob]
            frames_at.append((pack_files[name], slot.offset, slot.length, blob))
        else:
            frames_at.append((str(internals(store).blobs.location(blob)), 0, -1, blob))
    active = store.config.dictionary
    dictionary = (
        zstandard.ZstdCompressionDict(store.read_blob(store.config.dictionaries[active]))
        if active
        else None
    )
    decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)
    loaded_seeds = [recorder_class(path) for path in seeds_files]
    client = httpx.Client()

    def castore_warm() -> float:
        started = time.perf_counter()
        for _ in range(inner):
            for recorder, key in pairs:
                recorder.get_or_record_sync(key, _never)
        return (time.perf_counter() - started) / (inner * len(pairs))

    def raw_floor() -> float:
        """Read the frame (pread from the open pack, or open+read the loose file),
        decompress, check the blake3 digest, unpack: what any correct reader must do."""
        started = time.perf_counter()
        for _ in range(inner):
            for where, offset, length, blob in frames_at:
                if isinstance(where, int):
                    frame = os.pread(where, length, offset)
                else:
                    with open(where, "rb", buffering=0) as handle:  # noqa: PTH123
                        frame = handle.read()
                packed = decompressor.decompress(frame)
                if blake3.blake3(packed).hexdigest() != blob:
                    raise AssertionError(blob)
                msgpack.unpackb(packed, strict_map_key=False)
        return (time.perf_counter() - started) / (inner * len(frames_at))

    def castore_cold() -> float:
        total = 0.0
        for namespace, (_, item) in zip(namespaces, picks, strict=True):
            store.refresh(namespace)  # forget the index, as before a module's first test
            started = time.perf_counter()
            Recorder(store, namespace).get_or_record_sync(item.key, _never)
            total += time.perf_counter() - started
        return total / len(picks)

    def castore_open() -> float:
        started = time.perf_counter()
        fresh = Store(suites.store)
        Recorder(fresh, namespaces[0]).get_or_record_sync(picks[0][1].key, _never)
        return time.perf_counter() - started

    def seeds_warm() -> float:
        started = time.perf_counter()
        for _ in range(inner):
            for recorder, (_, item) in zip(loaded_seeds, picks, strict=True):
                recorder.get(item.key)
        return (time.perf_counter() - started) / (inner * len(picks))

    def seeds_cold() -> float:
        started = time.perf_counter()
        for path, (_, item) in zip(seeds_files, picks, strict=True):
            recorder_class(path).get(item.key)
        return (time.perf_counter() - started) / len(picks)

    def vcr_both() -> tuple[float, float]:
        cold = warm = 0.0
        for path, (_, item) in zip(cassettes, picks, strict=True):
            request = item.request
            body = request.get("body")
            content = body.encode() if isinstance(body, str) else body
            first, later = vcr_lookup(client, str(path), request["method"], request["uri"], content)
            cold += first
            warm += later
        return cold / len(picks), warm / len(picks)

    results: dict[str, dict[str, list[float]]] = {}

    def note(approach: str, kind: str, value: float) -> None:
        results.setdefault(approach, {}).setdefault(kind, []).append(value)

    for _ in range(repeat):
        # castore and its floor alternate, so drifts of the machine hit both alike.
        note("castore", "warm", _best_of(3, castore_warm))
        note("raw floor", "warm", _best_of(3, raw_floor))
        note("castore", "cold", _best_of(3, castore_cold))
        note("castore", "open", _best_of(3, castore_open))
        note("seeds", "warm", _best_of(3, seeds_warm))
        note("seeds", "cold", _best_of(3, seeds_cold))
        vcr_cold, vcr_warm = vcr_both()
        note("vcr", "cold", vcr_cold)
        note("vcr", "warm", vcr_warm)
    client.close()
    return {
        approach: {kind: summary(values) for kind, values in kinds.items()}
        for approach, kinds in results.items()
    }


def vcr_lookup(
    client: Any, cassette: str, method: str, uri: str, content: bytes | None
) -> tuple[float, float]:
    """vcrpy answering one request from ``cassette`` through an httpx ``client``: the
    seconds of the first answer (the cassette's load included) and of a later one (the
    mean of three), what the benchmarks call vcrpy's cold and warm lookup."""
    import vcr  # noqa: PLC0415 - a bench-only dependency

    started = time.perf_counter()
    with vcr.use_cassette(cassette, record_mode="none", allow_playback_repeats=True):
        client.request(method, uri, content=content)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(3):
            client.request(method, uri, content=content)
        return cold, (time.perf_counter() - started) / 3


# --- zstd --------------------------------------------------------------------------------


def unique_values(store: Store) -> list[bytes]:
    dictionaries = set(store.config.dictionaries.values())
    return [
        internals(store).reader.read_packed(blob.digest)
        for blob in store.blobs()
        if blob.digest not in dictionaries
    ]


def compression_floor(values: list[bytes], cover: tuple[int, int] | None = None) -> dict[str, Any]:
    """zstd level 19 with a 110 KB dictionary trained on the same unique values: the bytes of
    every value compressed alone, plus the dictionary.

    Without ``cover`` the dictionary comes from zstd's own parameter search; with it, from
    those COVER (k, d) parameters, which is how larger scales reuse the search made at 1x
    (the search takes minutes on 10x the values for a 2% difference)."""
    started = time.perf_counter()
    extra = {} if cover is None else {"k": cover[0], "d": cover[1]}
    dictionary = zstandard.train_dictionary(DICTIONARY_SIZE, list(values), level=19, **extra)
    compressor = zstandard.ZstdCompressor(level=19, dict_data=dictionary)
    frames = compressor.multi_compress_to_buffer(list(values), threads=-1)
    compressed = sum(len(frames[number].tobytes()) for number in range(len(values)))
    return {
        "bytes": compressed + len(dictionary.as_bytes()),
        "values": compressed,
        "dictionary": len(dictionary.as_bytes()),
        "cover": [dictionary.k, dictionary.d],
        "searched": cover is None,
        "seconds": time.perf_counter() - started,
    }


def zstd_tuning(values: list[bytes], levels: tuple[int, ...]) -> list[dict[str, Any]]:
    """Total compressed bytes and speeds per level, without and with a dictionary trained
    as `castore train-dictionary` trains it."""
    total = sum(len(value) for value in values)
    dictionary = zstandard.train_dictionary(
        DEFAULT_DICTIONARY_SIZE, list(values), k=COVER_K, d=COVER_D, level=19
    )
    rows = []
    for level in levels:
        for with_dictionary in (False, True):
            zdict = dictionary if with_dictionary else None
            compressor = zstandard.ZstdCompressor(level=level, dict_data=zdict)
            started = time.perf_counter()
            frames = [compressor.compress(value) for value in values]
            compress_seconds = time.perf_counter() - started
            decompressor = zstandard.ZstdDecompressor(dict_data=zdict)
            started = time.perf_counter()
            for frame in frames:
                decompressor.decompress(frame)
            decompress_seconds = time.perf_counter() - started
            size = sum(len(frame) for frame in frames) + (
                len(dictionary.as_bytes()) if zdict else 0
            )
            rows.append(
                {
                    "level": level,
                    "dictionary": with_dictionary,
                    "bytes": size,
                    "ratio": total / size,
                    "compress_mb_s": total / compress_seconds / 1e6,
                    "decompress_mb_s": total / decompress_seconds / 1e6,
                }
            )
    return rows
