"""Packs at scale: footprint against the zstd floor, lookup cost against the raw floor,
and how long the upkeep commands take. Run::

    uv run python -m bench.packs                 # 1x and 10x, a few minutes
    uv run python -m bench.packs --scales 1,10,100   # 100x, about 150,000 blobs

Each scale records the corpus into a store with castore's default settings (no
dictionary), packs it with ``castore pack`` and measures. Lookups are timed in
interleaved rounds against the raw floor: the same frames read with ``os.pread`` from the
same pack files, decompressed, digest-checked and unpacked with no castore code; the
report gives medians and the spread of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import blake3
import msgpack
import zstandard

from bench import corpus
from bench.measure import compression_floor, unique_values
from castore import Store
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


def lookups(store: Store, rounds: int, samples: int) -> dict[str, Any]:
    core = internals(store)
    packs = core.packs
    assert packs is not None
    rng = random.Random(5)
    pairs = [
        (namespace, key) for namespace in store.namespaces() for key in store.entries(namespace)
    ]
    picks = rng.sample(pairs, min(samples, len(pairs)))
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
    dictionary = zstandard.ZstdCompressionDict(store.read_blob(store.config.dictionaries[active]))
    decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)

    def castore_round() -> float:
        started = time.perf_counter()
        for namespace, key in picks:
            store.get(namespace, key)
        return (time.perf_counter() - started) / len(picks)

    def floor_round() -> float:
        started = time.perf_counter()
        for descriptor, offset, length, blob in located:
            packed = decompressor.decompress(os.pread(descriptor, length, offset))
            if blake3.blake3(packed).hexdigest() != blob:
                raise AssertionError(blob)
            msgpack.unpackb(packed, strict_map_key=False)
        return (time.perf_counter() - started) / len(located)

    castore_times, floor_times, ratios = [], [], []
    for number in range(rounds):  # interleaved, alternating which goes first
        if number % 2:
            first, second = floor_round(), castore_round()
            floor, mine = first, second
        else:
            mine, floor = castore_round(), floor_round()
        castore_times.append(mine)
        floor_times.append(floor)
        ratios.append(mine / floor)
    for descriptor in descriptors.values():
        os.close(descriptor)
    return {
        "lookups": len(picks),
        "castore_us": round(statistics.median(castore_times) * 1e6, 2),
        "floor_us": round(statistics.median(floor_times) * 1e6, 2),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def run_scale(cassettes: list[corpus.Cassette], factor: int, args: argparse.Namespace) -> dict:
    scaled = corpus.scale(cassettes, factor, args.duplicates)
    work = Path(tempfile.mkdtemp(prefix=f"castore-packs-{factor}x-"))
    root = work / "store"
    started = time.perf_counter()
    store = record(scaled, root)
    recorded = time.perf_counter() - started
    loose_count, loose_bytes = folder_bytes(root / "blobs", ".zst")
    values = unique_values(store)
    floor = compression_floor(values, cover=(2048, 8))
    pack_seconds, output = castore_cli(root, "pack", "--json")
    report = json.loads(output)
    pack_count, pack_bytes = folder_bytes(root / "packs", ".pack")
    _, index_bytes = folder_bytes(root / "packs", ".idx")
    left_count, left_bytes = folder_bytes(root / "blobs", ".zst")  # the dictionary
    footprint = pack_bytes + left_bytes
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
        "footprint_vs_floor": round(footprint / floor["bytes"], 3),
        "lfs_objects_per_4_mib": round(pack_count / max(1, pack_bytes / 2**22), 2),
        "upkeep_seconds": upkeep,
        "lookup": lookups(Store(root), args.rounds, args.samples),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=Path("bench/results/packs.json"))
    args = parser.parse_args()
    cassettes = corpus.load()
    results = [run_scale(cassettes, int(factor), args) for factor in args.scales.split(",")]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
