"""Packs at scale: footprint against the zstd floor, lookup cost against the raw floor,
and how long the upkeep commands take. Run::

    uv run python -m bench.packs                 # 1x and 10x, a few minutes
    uv run python -m bench.packs --scales 1,10,100   # 100x, about 150,000 blobs

Each scale records the corpus into a store with castore's default settings (no
dictionary), packs it with ``castore pack`` and measures. Lookups are timed last, every
scale's in the same shuffled rounds, against the raw floor: the same frames read with
``os.pread`` from the same pack files, decompressed, digest-checked and unpacked with no
castore code. Both ``Store.get`` and a recorder's ``get_or_record_sync`` (what a test
calls) are timed; the report gives medians and the spread of the per-round ratios. The
work folders (``/tmp/castore-packs-<scale>x-…``) are kept, their stores named in the
output.

For lookups alone, on stores already recorded and packed (``--lookups-only PATH…``);
with several, they are timed in the same shuffled rounds and each later store is compared
with the first (is 100x slower than 10x?)::

    uv run python -m bench.packs --lookups-only /tmp/castore-packs-10x-…/store \
        /tmp/castore-packs-100x-…/store
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import msgpack
import zstandard

from bench import corpus
from bench.measure import compression_floor, unique_values, vcr_lookup
from castore import Recorder, Store
from castore._storage.names import stored_key
from castore._storage.store import internals


def record(cassettes: list[corpus.Cassette], root: Path) -> Store:
    store = Store(root)
    with store.batch():
        for number, cassette in enumerate(cassettes):
            for item in cassette.interactions:
                store.put(f"tests/test_{number:05d}", item.key, item.response)
    return Store(root)


def castore_cli(root: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "castore", "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1):
        raise RuntimeError(run.stderr)
    return time.perf_counter() - started, run.stdout


def folder_bytes(folder: Path, suffix: str = "") -> tuple[int, int]:
    files = [path for path in folder.rglob(f"*{suffix}") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


@dataclass
class LookupRounds:
    """One store's timed lookups, ready to run: each round function times every pick once
    and returns the seconds per lookup."""

    lookups: int
    rounds: dict[str, Callable[[], float]]
    closers: list[Callable[[], None]]

    def close(self) -> None:
        for close in self.closers:
            close()


def pick_lookups(store: Store, samples: int) -> list[tuple[str, str]]:
    """The (namespace, stored key) pairs timed: a seeded sample over the whole store."""
    rng = random.Random(5)
    pairs = [
        (namespace, key) for namespace in store.namespaces() for key in store.entries(namespace)
    ]
    return rng.sample(pairs, min(samples, len(pairs)))


def lookup_rounds(store: Store, samples: int) -> LookupRounds:
    """The raw floor, ``Store.get`` and a recorder over the same random picks of ``store``,
    warmed up (indexes loaded, packs opened) as in a test session after its first lookups."""
    packs = internals(store).blobs.packs
    picks = pick_lookups(store, samples)
    for namespace, key in picks:  # warm: indexes loaded, packs opened
        store.get(namespace, key)
    indexes = packs.indexes()
    located = []
    descriptors: dict[str, int] = {}
    for namespace, key in picks:
        blob = store.entries(namespace)[key].blob
        name = packs.pack_of(blob)
        assert name is not None
        slot = indexes[name].slots[blob]
        if name not in descriptors:
            descriptors[name] = os.open(packs.pack_path(name), os.O_RDONLY)
        located.append((descriptors[name], slot.offset, slot.length, blob))
    active = store.config.dictionary
    assert active is not None, "castore pack trains a dictionary"
    dictionary = zstandard.ZstdCompressionDict(store.read_blob(store.config.dictionaries[active]))
    decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)

    recorders: dict[str, Recorder] = {}
    calls = [
        (recorders.setdefault(namespace, Recorder(store, namespace)), key)
        for namespace, key in picks
    ]

    def castore_round() -> float:
        started = time.perf_counter()
        for namespace, key in picks:
            store.get(namespace, key)
        return (time.perf_counter() - started) / len(picks)

    def recorder_round() -> float:
        started = time.perf_counter()
        for recorder, key in calls:
            recorder.get_or_record_sync(key, _never)
        return (time.perf_counter() - started) / len(calls)

    def floor_round() -> float:
        started = time.perf_counter()
        for descriptor, offset, length, blob in located:
            packed = decompressor.decompress(os.pread(descriptor, length, offset))
            if blake3.blake3(packed).hexdigest() != blob:
                raise AssertionError(blob)
            msgpack.unpackb(packed, strict_map_key=False)
        return (time.perf_counter() - started) / len(located)

    rounds = {"floor": floor_round, "castore": castore_round, "recorder": recorder_round}
    rounds.update(_floor_parts(located, decompressor))
    closers: list[Callable[[], None]] = [
        functools.partial(os.close, descriptor) for descriptor in descriptors.values()
    ]
    vcr_lookups = store.root.parent / VCR_LOOKUPS
    if (vcr_lookups / "picks.json").is_file():
        rounds["vcr"], close_client = _vcr_round(vcr_lookups)
        closers.append(close_client)
    return LookupRounds(len(picks), rounds, closers)


#: Where a scale's work folder keeps the VCR.py cassettes of the first lookup picks, and
#: how many picks vcrpy replays (each opens its cassette: 5 ms a pick, untimed).
VCR_LOOKUPS = "vcr-lookups"
VCR_PICKS = 200


def write_vcr_lookups(scaled: list[corpus.Cassette], store: Store, samples: int) -> None:
    """The cassettes of the first :data:`VCR_PICKS` lookup picks as VCR.py's YAML, beside
    the store, with the request each pick makes: vcrpy's warm lookup is then timed on the
    same recordings as castore's, in the same rounds."""
    from bench.suites import _body_bytes, vcr_document  # noqa: PLC0415

    folder = store.root.parent / VCR_LOOKUPS
    folder.mkdir(exist_ok=True)
    requests = []
    for namespace, key in pick_lookups(store, samples)[:VCR_PICKS]:
        number = int(namespace.rsplit("_", 1)[1])
        cassette = scaled[number]
        path = folder / f"test_{number:05d}.yaml"
        if not path.exists():
            path.write_text(vcr_document(cassette))
        item = next(item for item in cassette.interactions if stored_key(item.key) == key)
        body = _body_bytes(item.request)
        requests.append(
            {
                "cassette": path.name,
                "method": item.request["method"],
                "uri": item.request["uri"],
                "body": None if body is None else base64.b64encode(body).decode(),
            }
        )
    (folder / "picks.json").write_text(json.dumps(requests))


def _vcr_round(folder: Path) -> tuple[Callable[[], float], Callable[[], None]]:
    """vcrpy's warm lookup, timed as the main benchmark times it (:func:`vcr_lookup`)."""
    import httpx  # noqa: PLC0415 - a bench-only dependency

    picks = json.loads((folder / "picks.json").read_text())
    requests = [
        (
            str(folder / pick["cassette"]),
            pick["method"],
            pick["uri"],
            None if pick["body"] is None else base64.b64decode(pick["body"]),
        )
        for pick in picks
    ]
    client = httpx.Client()

    def vcr_round() -> float:
        warm = [vcr_lookup(client, *request)[1] for request in requests]
        return sum(warm) / len(warm)

    return vcr_round, client.close


#: The raw floor's four steps, timed one by one: what bounds any reader that checks digests.
FLOOR_PARTS = ("pread", "decompress", "blake3", "unpack")


def _floor_parts(
    located: list[tuple[int, int, int, str]], decompressor: zstandard.ZstdDecompressor
) -> dict[str, Callable[[], float]]:
    frames = [os.pread(descriptor, length, offset) for descriptor, offset, length, _ in located]
    values = [decompressor.decompress(frame) for frame in frames]
    digests = [blob for *_, blob in located]

    def timed(step: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            step()
            return (time.perf_counter() - started) / len(located)

        return run

    def pread() -> None:
        for descriptor, offset, length, _ in located:
            os.pread(descriptor, length, offset)

    def decompress() -> None:
        for frame in frames:
            decompressor.decompress(frame)

    def check() -> None:
        for packed, blob in zip(values, digests, strict=True):
            if blake3.blake3(packed).hexdigest() != blob:
                raise AssertionError(blob)

    def unpack() -> None:
        for packed in values:
            msgpack.unpackb(packed, strict_map_key=False)

    steps = (pread, decompress, check, unpack)
    return {f"floor {name}": timed(step) for name, step in zip(FLOOR_PARTS, steps, strict=True)}


def _ratios(mine: list[float], theirs: list[float]) -> dict[str, Any]:
    """The median and spread of round-by-round ratios: each pair ran seconds apart."""
    ratios = _over(mine, theirs)
    return {
        "ratio": round(statistics.median(ratios), 3),
        "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def compare_lookups(stores: dict[str, Store], rounds: int, samples: int) -> dict[str, Any]:
    """Lookups of several stores (1x, 10x, 100x) timed in the same rounds, each round in a
    new shuffled order of every store's floor, ``Store.get`` and recorder, so a drift of the
    machine hits them all alike. With more than one store, ``against_first`` gives each
    later store's per-round ratios to the first's (``castore_over_floor``: castore's time
    over its floor, against the same for the first store): the issue's "no slower at 100x".
    """
    prepared = {label: lookup_rounds(store, samples) for label, store in stores.items()}
    jobs = [(label, name) for label, ready in prepared.items() for name in ready.rounds]
    times: dict[tuple[str, str], list[float]] = {job: [] for job in jobs}
    rng = random.Random(7)
    for _ in range(rounds):
        rng.shuffle(jobs)
        for label, name in jobs:
            times[label, name].append(prepared[label].rounds[name]())
    for ready in prepared.values():
        ready.close()
    results: dict[str, Any] = {}
    for label, ready in prepared.items():
        store_get = _ratios(times[label, "castore"], times[label, "floor"])
        recorder = _ratios(times[label, "recorder"], times[label, "floor"])
        results[label] = {
            "lookups": ready.lookups,
            "castore_us": _us(times[label, "castore"]),
            "floor_us": _us(times[label, "floor"]),
            "floor_parts_us": {name: _us(times[label, f"floor {name}"]) for name in FLOOR_PARTS},
            "ratio": store_get["ratio"],
            "ratio_spread": store_get["ratio_spread"],
            "recorder_us": _us(times[label, "recorder"]),
            "recorder_ratio": recorder["ratio"],
            "recorder_ratio_spread": recorder["ratio_spread"],
        }
        if "vcr" in ready.rounds:  # how many times faster than vcrpy: the >= 30x target
            results[label]["vcr_warm_us"] = _us(times[label, "vcr"])
            results[label]["vcr_over_recorder"] = _ratios(
                times[label, "vcr"], times[label, "recorder"]
            )
            results[label]["vcr_over_floor"] = _ratios(times[label, "vcr"], times[label, "floor"])
    first, *later = prepared
    for label in later:
        against = {
            name: _ratios(times[label, name], times[first, name])
            for name in ("floor", "castore", "recorder")
        }
        # The picks differ between stores (other values, other sizes), so the floor moves
        # too; castore's own share is its time over the floor's, compared round by round.
        for name in ("castore", "recorder"):
            against[f"{name}_over_floor"] = _ratios(
                _over(times[label, name], times[label, "floor"]),
                _over(times[first, name], times[first, "floor"]),
            )
        results[label]["against_first"] = against
    return results


def _over(mine: list[float], theirs: list[float]) -> list[float]:
    """Round-by-round ratios of two series timed in the same rounds."""
    return [a / b for a, b in zip(mine, theirs, strict=True)]


def _us(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1e6, 2)


def _never() -> Any:
    raise AssertionError("a replay called the API")


# --- git and git-lfs: clone and re-recording ----------------------------------------------


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    run = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {run.stderr}")
    return run.stdout


def du(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def make_repo(path: Path, remote: Path) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "bench@castore.invalid")
    git(path, "config", "user.name", "bench")
    # No background `git gc --auto` after a commit of 60,000 files: it repacked objects
    # while git-lfs's pre-push hook read them ("missing object" at 100x).
    git(path, "config", "gc.auto", "0")
    git(path, "config", "maintenance.auto", "false")
    git(remote.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    git(path, "remote", "add", "origin", remote.as_uri())


def commit_and_push(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    git(repo, "push", "-q", "origin", "main")


def clone_seconds(remote: Path, target: Path) -> float:
    """A fresh clone, LFS content included (git-lfs's smudge filter fetches it)."""
    started = time.perf_counter()
    git(remote.parent, "clone", "-q", remote.as_uri(), str(target))
    seconds = time.perf_counter() - started
    if not any(target.iterdir()) or not (target / ".git").is_dir():
        raise RuntimeError(f"the clone of {remote} is empty")
    pointers = [path for path in target.rglob("*.pack") if path.read_bytes()[:8] == b"version "]
    if pointers:
        raise RuntimeError(f"the clone holds LFS pointers, not content: {pointers[:2]}")
    return seconds


def git_figures(
    scaled: list[corpus.Cassette], store_root: Path, work: Path, rounds: int
) -> dict[str, Any]:
    """Push the packed store (LFS on giftless) and the VCR.py cassettes (plain git), clone
    both fresh in interleaved rounds, then re-record 1 response and 10% of them."""
    from bench.lfs_server import giftless, stored_objects  # noqa: PLC0415
    from bench.suites import vcr_document  # noqa: PLC0415

    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    castore_repo, castore_remote = work / "castore-repo", work / "castore.git"
    vcr_repo, vcr_remote = work / "vcr-repo", work / "vcr.git"
    make_repo(castore_repo, castore_remote)
    make_repo(vcr_repo, vcr_remote)
    with giftless(work / "lfs") as url:
        subprocess.run(["git", "lfs", "install", "--skip-repo"], check=True, capture_output=True)
        shutil.copytree(store_root, castore_repo / "store")
        (castore_repo / "pytest.ini").write_text("[pytest]\ncastore_root = store\n")
        castore_cli(castore_repo / "store", "git", "setup")
        (castore_repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{url}"\n')
        commit_and_push(castore_repo, "packed store")
        for number, cassette in enumerate(scaled):
            path = vcr_repo / "cassettes" / f"test_{number:05d}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(vcr_document(cassette))
        commit_and_push(vcr_repo, "cassettes")
        git(vcr_remote, "gc", "-q", "--aggressive")
        git(castore_remote, "gc", "-q", "--aggressive")
        lfs_objects = len(stored_objects(work / "lfs"))
        vcr_git_bytes, castore_git_bytes = du(vcr_remote), du(castore_remote)
        lfs_bytes = du(work / "lfs" / "objects")
        castore_times, vcr_times, ratios = [], [], []
        for number in range(rounds):
            order = [("castore", castore_remote), ("vcr", vcr_remote)]
            if number % 2:
                order.reverse()
            timings = {}
            for name, remote in order:
                target = work / f"clone-{name}-{number}"
                timings[name] = clone_seconds(remote, target)
                shutil.rmtree(target)
            castore_times.append(timings["castore"])
            vcr_times.append(timings["vcr"])
            ratios.append(timings["castore"] / timings["vcr"])
        rerecord = {
            label: rerecording(scaled, castore_repo, vcr_repo, work, share)
            for label, share in (("one", 0.0), ("ten_percent", 0.10))
        }
    return {
        "lfs_objects": lfs_objects,
        "clone_castore_s": round(statistics.median(castore_times), 2),
        "clone_vcr_s": round(statistics.median(vcr_times), 2),
        "clone_ratio": round(statistics.median(ratios), 2),
        "clone_ratio_spread": [round(min(ratios), 2), round(max(ratios), 2)],
        "vcr_git_bytes": vcr_git_bytes,
        "castore_git_bytes": castore_git_bytes,
        "castore_lfs_bytes": lfs_bytes,
        "rerecording": rerecord,
    }


def rerecording(
    scaled: list[corpus.Cassette], castore_repo: Path, vcr_repo: Path, work: Path, share: float
) -> dict[str, int]:
    """Re-record one response (share 0) or a share of them, in both repositories; the
    bytes LFS receives and the bytes each bare repository grows by."""
    from bench.suites import vcr_document  # noqa: PLC0415

    rng = random.Random(int(share * 1000) + 1)
    items = [(n, i) for n, cassette in enumerate(scaled) for i in range(len(cassette.interactions))]
    chosen = rng.sample(items, max(1, int(share * len(items))))
    store = Store(castore_repo / "store")
    touched: dict[int, corpus.Cassette] = {}
    for number, position in chosen:
        cassette = touched.get(number, scaled[number])
        interactions = list(cassette.interactions)
        item = interactions[position]
        new = corpus.rerecorded(item.response, f"rerecord/{share}/{number}/{position}")
        interactions[position] = corpus.Interaction(item.request, new, item.key)
        touched[number] = corpus.Cassette(cassette.name, interactions)
        store.put(f"tests/test_{number:05d}", item.key, new)
    lfs_before = du(work / "lfs")
    castore_before, vcr_before = du(work / "castore.git"), du(work / "vcr.git")
    castore_cli(castore_repo / "store", "pack")
    castore_cli(castore_repo / "store", "gc")
    commit_and_push(castore_repo, f"re-record {len(chosen)}")
    for number, cassette in touched.items():
        (vcr_repo / "cassettes" / f"test_{number:05d}.yaml").write_text(vcr_document(cassette))
        scaled[number] = cassette
    commit_and_push(vcr_repo, f"re-record {len(chosen)}")
    return {
        "responses": len(chosen),
        "castore_lfs_upload_bytes": du(work / "lfs") - lfs_before,
        "castore_git_growth_bytes": du(work / "castore.git") - castore_before,
        "vcr_git_growth_bytes": du(work / "vcr.git") - vcr_before,
    }


def run_scale(
    cassettes: list[corpus.Cassette], factor: int, args: argparse.Namespace
) -> dict[str, Any]:
    scaled = corpus.scale(cassettes, factor, args.duplicates)
    work = Path(tempfile.mkdtemp(prefix=f"castore-packs-{factor}x-"))
    root = work / "store"
    started = time.perf_counter()
    store = record(scaled, root)
    recorded = time.perf_counter() - started
    write_vcr_lookups(scaled, store, args.samples)
    loose_count, loose_bytes = folder_bytes(root / "blobs", ".zst")
    values = unique_values(store)
    floor = compression_floor(values, cover=(2048, 8)) if args.floor else {"bytes": 0}
    pack_seconds, output = castore_cli(root, "pack", "--json")
    report = json.loads(output)
    pack_count, pack_bytes = folder_bytes(root / "packs", ".pack")
    _, index_bytes = folder_bytes(root / "packs", ".idx")
    left_count, left_bytes = folder_bytes(root / "blobs", ".zst")  # the dictionary
    footprint = pack_bytes + left_bytes
    packed_store = Store(root)
    packs = internals(packed_store).blobs.packs
    assert packs is not None
    per_module = [
        len({packs.pack_of(entry.blob) for entry in packed_store.entries(namespace).values()})
        for namespace in packed_store.namespaces()
    ]
    upkeep = {
        name: round(castore_cli(root, *command)[0], 2)
        for name, command in (
            ("verify", ["verify"]),
            ("stats", ["stats"]),
            ("gc", ["gc"]),
            ("pack_again", ["pack"]),
            ("repack", ["pack", "--repack"]),
        )
    }
    result = {
        "scale": factor,
        "interactions": sum(len(cassette.interactions) for cassette in scaled),
        "blobs": len(values),
        "record_seconds": round(recorded, 1),
        "loose": {"files": loose_count, "bytes": loose_bytes},
        "pack_seconds": round(pack_seconds, 1),
        "packs": {"files": pack_count, "bytes": pack_bytes, "index_bytes": index_bytes},
        "dictionary_trained": report["dictionary_trained"],
        "left_loose": {"files": left_count, "bytes": left_bytes},
        "floor_bytes": floor["bytes"],
        "footprint_vs_floor": round(footprint / floor["bytes"], 3) if floor["bytes"] else None,
        "lfs_objects_per_4_mib": round(pack_count / max(1, pack_bytes / 2**22), 2),
        "packs_per_module": {
            "mean": round(statistics.mean(per_module), 2),
            "max": max(per_module),
        },
        "upkeep_seconds": upkeep,
        "store": str(root),  # kept for --lookups-only; lookups are timed after every scale
    }
    if args.git:
        result["git"] = git_figures(scaled, root, work, args.clone_rounds)
    print(json.dumps(result), flush=True)
    return result


def _require_git_lfs() -> None:
    """Stop before the long build, not after it, when the clone figures cannot be had."""
    found = subprocess.run(["git", "lfs", "version"], capture_output=True, check=False)
    if found.returncode != 0:
        sys.exit(
            "bench.packs: git-lfs is not installed, and the clone figures need it: install "
            "it (Debian: apt-get install git-lfs, as .ci/run does) or pass --no-git"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=Path("bench/results/packs.json"))
    parser.add_argument("--no-git", dest="git", action="store_false", help="skip clone figures")
    parser.add_argument("--clone-rounds", type=int, default=5)
    parser.add_argument(
        "--no-floor", dest="floor", action="store_false", help="skip the compression floor"
    )
    parser.add_argument(
        "--lookups-only",
        type=Path,
        nargs="+",
        metavar="STORE",
        help="time lookups of these packed stores (in the same rounds) and stop",
    )
    args = parser.parse_args()
    if args.lookups_only:
        stores = {str(path): Store(path) for path in args.lookups_only}
        print(json.dumps(compare_lookups(stores, args.rounds, args.samples), indent=2))
        return
    if args.git:
        _require_git_lfs()
    cassettes = corpus.load()
    results = [run_scale(cassettes, int(factor), args) for factor in args.scales.split(",")]
    # Every scale's lookups in the same rounds, so "no slower at 100x than at 10x" compares
    # figures from one stretch of the machine's time, not from runs an hour apart.
    stores = {f"{result['scale']}x": Store(result["store"]) for result in results}
    timed = compare_lookups(stores, args.rounds, args.samples)
    for result in results:
        result["lookup"] = timed[f"{result['scale']}x"]
        print(json.dumps({"scale": result["scale"], "lookup": result["lookup"]}), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
