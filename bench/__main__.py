"""Run the benchmark: castore against VCR.py and the seeds' JSON files on real LLM traffic.

    uv run --group bench python -m bench                      # 1x and 10x the corpus
    uv run --group bench python -m bench --scales 1,10,100    # adds 100x (long)
    uv run --group bench python -m bench --update-docs        # also rewrite docs/benchmarks.*

Results go to bench/results/ (results.json, report.md, benchmarks.png); docs/benchmarks.md
explains every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import corpus, measure, report, suites
from bench.plot import plot
from castore import Store
from castore._upkeep.stats import store_stats

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = next(
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory = 0
    versions = {
        name: metadata.version(name)
        for name in ("castore", "vcrpy", "pytest-recording", "httpx", "zstandard", "pytest")
    }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory / 2**30,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


def run_scale(
    cassettes: list[corpus.Cassette], factor: int, args: argparse.Namespace, *, tune: bool
) -> dict[str, Any]:
    started = time.perf_counter()
    scaled = corpus.scale(cassettes, factor, args.duplicates)
    work = args.work / f"x{factor}"
    log(f"{factor}x: building {len(scaled):,} test modules four ways in {work}")
    built = suites.build(scaled, work, log=log)
    log(f"  built in {time.perf_counter() - started:.0f} s")
    result: dict[str, Any] = {
        "scale": factor,
        "tests": len(scaled),
        "lookups": sum(len(c.interactions) for c in scaled),
        "footprint": {a: measure.tree_size(built.fixtures(a)) for a in ("castore", "vcr", "seeds")},
    }
    store = Store(built.store)
    result["castore_stats"] = store_stats(store).to_json()  # blob_bytes includes the dictionary
    values = measure.unique_values(store)
    log("  compression floor (zstd -19 with a 110 KB dictionary)")
    result["compression_floor"] = measure.compression_floor(values, args.cover)
    args.cover = args.cover or tuple(result["compression_floor"]["cover"])
    if tune:
        log("  zstd tuning: levels, with and without a dictionary")
        result["tuning"] = {
            "scale": factor,
            "bytes": sum(len(value) for value in values),
            "rows": measure.zstd_tuning(values, (1, 3, 9, 19)),
        }
    repeat = args.repeat or (5 if factor == 1 else 2 if factor <= 10 else 1)
    result["repeat"] = repeat
    log(f"  replaying each suite {repeat} times (castore and in memory {max(repeat, 5)})")
    result["replay"] = measure.replay_suites(built, repeat, log)
    log("  per-lookup latency")
    result["latency"] = measure.lookup_latency(built, samples=args.samples, repeat=max(repeat, 3))
    if not args.no_git:
        log("  git: pack, re-record one response, re-record 10%")
        result["git"] = git_costs(built)
    result["seconds"] = time.perf_counter() - started
    log(f"  {factor}x done in {result['seconds']:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def git_costs(built: suites.Suites) -> dict[str, Any]:
    approaches = ("castore", "vcr", "seeds")
    repos = {a: measure.GitRepo(built.work / f"git-{a}", built.fixtures(a)) for a in approaches}
    costs: dict[str, dict[str, int]] = {a: {} for a in approaches}
    for approach, repo in repos.items():
        costs[approach]["packed"] = repo.commit_and_pack("record the suite")
    for label, share, seed in (("rerecord_one", 1, 101), ("rerecord_tenth", 0.1, 202)):
        changes = measure.choose_rerecordings(built, share, seed)
        measure.adopt_rerecordings(built, changes)
        for approach, repo in repos.items():
            measure.apply_rerecordings(built, approach, changes)
            before = costs[approach].get("last", costs[approach]["packed"])
            after = repo.commit_and_pack(label)
            costs[approach][label] = after - before
            costs[approach]["last"] = after
    for cost in costs.values():
        cost.pop("last")
    return costs


def publish(document: dict[str, Any], *, update_docs: bool) -> None:
    """Write report.md and the plot from a results document, and with ``update_docs``
    the generated part of docs/benchmarks.md and its picture."""
    text = report.markdown(document)
    (RESULTS / "report.md").write_text(text + "\n")
    plot(document, RESULTS / "benchmarks.png")
    print(text)
    if update_docs:
        shutil.copy(RESULTS / "benchmarks.png", REPO / "docs" / "benchmarks.png")
        page = DOC.read_text()
        head, rest = page.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        log(f"updated {DOC} and docs/benchmarks.png")


def arguments() -> argparse.ArgumentParser:
    """The command line of ``python -m bench`` (docs/benchmarks.md shows its forms)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="1,10", help="comma-separated scale factors")
    parser.add_argument(
        "--repeat", type=int, help="timed runs per measurement (default 5 at 1x, 2 at 10x, 1 above)"
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of exact duplicates in copies"
    )
    parser.add_argument("--samples", type=int, default=200, help="lookups sampled for latency")
    parser.add_argument("--work", type=Path, default=RESULTS / "work", help="scratch directory")
    parser.add_argument("--no-git", action="store_true", help="skip the git measurements")
    parser.add_argument("--keep", action="store_true", help="keep the generated suites")
    parser.add_argument(
        "--update-docs", action="store_true", help="rewrite docs/benchmarks.md and .png"
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="measure nothing: render results.json again (report.md, the plot, --update-docs)",
    )
    return parser


def main() -> None:
    args = arguments().parse_args()
    if args.from_results:
        publish(json.loads((RESULTS / "results.json").read_text()), update_docs=args.update_docs)
        return
    args.cover = None  # COVER parameters of the floor's dictionary, searched at the first scale
    started = time.perf_counter()
    cassettes = corpus.load()
    interactions = sum(len(cassette.interactions) for cassette in cassettes)
    log(f"corpus: {len(cassettes)} cassettes, {interactions:,} interactions")
    factors = [int(part) for part in args.scales.split(",")]
    results = [
        run_scale(cassettes, factor, args, tune=number == 0)
        for number, factor in enumerate(factors)
    ]
    tuning = results[0].pop("tuning")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    document = {
        "date": dt.date.today().isoformat(),
        "command": "uv run --group bench python -m bench"
        + (f" --scales {args.scales}" if args.scales != "1,10" else ""),
        "duplicates": args.duplicates,
        "machine": machine(),
        "results": results,
        "tuning": tuning,
        "seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(document, indent=2))
    publish(document, update_docs=args.update_docs)
    log(f"total {document['seconds'] / 60:.1f} min; results in {RESULTS}")


if __name__ == "__main__":
    main()
