"""Replaying one recorded request through each HTTP client: castore against VCR.py. Run::

    uv run --group bench python -m bench.clients                 # about 4 minutes
    uv run --group bench python -m bench.clients --quick         # a smoke run, seconds
    uv run --group bench python -m bench.clients --profile requests   # castore's share, profiled

For each client (httpx sync and async, the openai SDK over httpx2, aiohttp, requests plain
and ``stream=True``, urllib3, botocore's bedrock-runtime ``converse`` and
``converse_stream``) it records the same calls once with castore (``HttpRecorder`` in mode
``all``, on a temporary store) and once with VCR.py (a cassette, record mode ``all``),
against a loopback server in a child process that answers with real LLM answers from the
corpus (``bench.answer_server``, ``bench.client_payloads``): ``--tests`` tests of
``--calls`` distinct calls each, every test in a namespace and a cassette of its own, and
every call alone in another. Then, in shuffled rounds, every client's contestants are
timed in one process:

* **floor**: the client with no recorder at all, answered from memory where castore and
  VCR.py step in (``bench.client_scenarios``): the client's own work;
* **warm**: castore's recorder or VCR.py's test cassette already on (as in a test, after
  its fixture started), one call replayed;
* **cold**: turning the recorder on, one call, turning it off, with the recording not yet
  read (castore: a new ``Recorder`` and ``HttpRecorder``, the namespace's index read from
  disk; VCR.py: ``use_cassette``, which reads and parses the cassette);
* **loopback**: the same call live, to the server.

Every contestant's answers are first checked against the live ones, and the server's call
count shows that no replay reached it. Figures are medians of the rounds, and each ratio
is the median of per-round ratios with their spread (the two figures of a round are
seconds apart, so a slow spell of the shared machine hits both). Results go to
``bench/results/clients.json``; docs/benchmarks.md explains them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import client_payloads
from bench.answer_server import RunningServer, serving
from bench.client_payloads import Call
from bench.client_scenarios import SCENARIOS, Around, Scenario
from castore import Recorder, Store
from castore.integrations.http import HttpRecorder

REPO = Path(__file__).resolve().parent.parent
#: The target of issue 24: a replay through castore takes at most this share of VCR.py's.
TARGET = 0.1
CONTESTANTS = ("floor", "castore warm", "castore cold", "vcr warm", "vcr cold", "loopback")

Timing = Callable[[int], tuple[float, list[Any]]]
"""Runs a contestant ``reps`` times over a scenario's calls: (seconds per call, results)."""


_STARTED = time.perf_counter()


def log(message: str) -> None:
    elapsed = time.perf_counter() - _STARTED
    print(f"[bench.clients {elapsed:5.1f} s] {message}", file=sys.stderr, flush=True)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Recordings:
    """Where one scenario's calls were recorded: castore namespaces and VCR.py cassettes,
    one per test (its calls, for warm replays) and one per call (for cold ones)."""

    test_namespaces: list[str]
    call_namespaces: list[str]
    test_cassettes: list[Path]
    call_cassettes: list[Path]
    vcr_problem: str | None = None
    """Why VCR.py could not record or replay these calls, if it could not."""


@dataclass
class Bench:
    scenario: Scenario
    tests: list[list[Call]]
    """The calls, as the tests that make them (a test's calls share a recording)."""
    recordings: Recordings
    timings: dict[str, Timing] = field(default_factory=dict)

    @property
    def calls(self) -> list[Call]:
        return [call for test in self.tests for call in test]


def as_tests(calls: list[Call], per_test: int) -> list[list[Call]]:
    return [calls[at : at + per_test] for at in range(0, len(calls), per_test)]


# --- recording ------------------------------------------------------------------------------


def record(scenario: Scenario, tests: list[list[Call]], store: Store, folder: Path) -> Recordings:
    """Record the tests' calls through the scenario's client, with castore and with VCR.py:
    each test in a namespace and a cassette of its own, and each call alone."""
    import vcr  # noqa: PLC0415 - a bench-only dependency

    name = slug(scenario.name)
    calls = [call for test in tests for call in test]
    recordings = Recordings(
        test_namespaces=[f"{name}/test-{n}" for n in range(len(tests))],
        call_namespaces=[f"{name}/call-{n}" for n in range(len(calls))],
        test_cassettes=[folder / name / f"test-{n}.yaml" for n in range(len(tests))],
        call_cassettes=[folder / name / f"call-{n}.yaml" for n in range(len(calls))],
    )
    groups = list(zip(recordings.test_namespaces, recordings.test_cassettes, tests, strict=True))
    groups += [
        (namespace, cassette, [call])
        for namespace, cassette, call in zip(
            recordings.call_namespaces, recordings.call_cassettes, calls, strict=True
        )
    ]
    for namespace, cassette, group in groups:
        with HttpRecorder(Recorder(store, namespace, mode="all")).active():
            scenario.timed(group)
        if len(store.entries(namespace)) != len(group):
            raise RuntimeError(f"{scenario.name}: castore recorded {namespace} incompletely")
        try:
            with vcr.use_cassette(str(cassette), record_mode="all"):
                scenario.timed(group)
        except Exception as error:  # VCR.py is left out, and the report says why
            recordings.vcr_problem = f"recording: {type(error).__name__}: {error}"
    return recordings


# --- the contestants ---------------------------------------------------------------------------


def timings(bench: Bench, store: Store) -> dict[str, Timing]:
    """The scenario's contestants, each a function of ``reps``."""
    import vcr  # noqa: PLC0415

    scenario, tests, calls, recordings = bench.scenario, bench.tests, bench.calls, bench.recordings
    test_recorders = [Recorder(store, ns, mode="none") for ns in recordings.test_namespaces]

    def floor(reps: int) -> tuple[float, list[Any]]:
        with scenario.floor() as answers:
            answers.serve([call.answer for call in calls] * reps)
            seconds, results = scenario.timed(calls * reps)
        return seconds / (len(calls) * reps), results

    def warm(turned_on: Callable[[int], contextlib.AbstractContextManager[Any]]) -> Timing:
        """Each test's calls with its recording already on (turned on and off untimed)."""

        def timing(reps: int) -> tuple[float, list[Any]]:
            total, results = 0.0, []
            for _ in range(reps):
                for number, test in enumerate(tests):
                    with turned_on(number):
                        seconds, answered = scenario.timed(test)
                    total += seconds
                    results += answered
            return total / (len(calls) * reps), results

        return timing

    def castore_test(number: int) -> contextlib.AbstractContextManager[Any]:
        return HttpRecorder(test_recorders[number]).active()  # a test's fixture

    def vcr_test(number: int) -> contextlib.AbstractContextManager[Any]:
        cassette = str(recordings.test_cassettes[number])
        return vcr.use_cassette(cassette, record_mode="none")  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def castore_call(position: int) -> Iterator[None]:
        recorder = Recorder(store, recordings.call_namespaces[position], mode="none")
        with HttpRecorder(recorder).active():
            yield

    def vcr_call(position: int) -> contextlib.AbstractContextManager[Any]:
        cassette = str(recordings.call_cassettes[position])
        return vcr.use_cassette(cassette, record_mode="none")  # type: ignore[no-any-return]

    def cold(turned_on: Around, forget: Callable[[], None]) -> Timing:
        """Each call with its recording turned on and off in the timed region."""

        def timing(reps: int) -> tuple[float, list[Any]]:
            total, results = 0.0, []
            for _ in range(reps):
                forget()
                seconds, answered = scenario.timed(calls, turned_on)
                total += seconds
                results += answered
            return total / (len(calls) * reps), results

        return timing

    def forget_indexes() -> None:
        for namespace in recordings.call_namespaces:
            store.refresh(namespace)  # not read yet, as at a test module's start

    def loopback(reps: int) -> tuple[float, list[Any]]:
        seconds, results = scenario.timed(calls * reps)
        return seconds / (len(calls) * reps), results

    found: dict[str, Timing] = {
        "floor": floor,
        "castore warm": warm(castore_test),
        "castore cold": cold(castore_call, forget_indexes),
        "loopback": loopback,
    }
    if recordings.vcr_problem is None:
        found["vcr warm"] = warm(vcr_test)
        found["vcr cold"] = cold(vcr_call, lambda: None)  # use_cassette reads the file
    return found


def check(bench: Bench, server: RunningServer) -> None:
    """Every contestant answers each call as the live server did, and no replay reaches
    the server. A VCR.py that cannot replay the calls is left out (and said so)."""
    scenario = bench.scenario
    _, live = bench.timings["loopback"](1)
    expected = [scenario.digest(result) for result in live]
    before = server.calls()
    for name, timing in list(bench.timings.items()):
        if name == "loopback":
            continue
        try:
            _, results = timing(1)
        except Exception as error:
            if not name.startswith("vcr"):
                raise
            bench.recordings.vcr_problem = f"replaying: {type(error).__name__}: {error}"
            del bench.timings["vcr warm"], bench.timings["vcr cold"]
            continue
        got = [scenario.digest(result) for result in results]
        if got != expected:
            raise AssertionError(f"{scenario.name}: {name} answered otherwise than live")
    if server.calls() != before:
        raise AssertionError(f"{scenario.name}: a replay reached the server")


# --- rounds and figures --------------------------------------------------------------------------


def run_rounds(benches: list[Bench], rounds: int, reps: int) -> dict[tuple[str, str], list[float]]:
    """Every contestant of every client once a round, in a new shuffled order each round."""
    jobs = [(bench, name) for bench in benches for name in bench.timings]
    times: dict[tuple[str, str], list[float]] = {
        (bench.scenario.name, name): [] for bench, name in jobs
    }
    rng = random.Random(24)
    for number in range(rounds):
        rng.shuffle(jobs)
        for bench, name in jobs:
            times[bench.scenario.name, name].append(bench.timings[name](reps)[0])
        log(f"round {number + 1}/{rounds} done")
    return times


def _us(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1e6, 1)


def _ratio(mine: list[float], theirs: list[float]) -> dict[str, Any]:
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    return {
        "median": round(statistics.median(ratios), 4),
        "spread": [round(min(ratios), 4), round(max(ratios), 4)],
    }


def _share(mine: list[float], floor: list[float]) -> float:
    """A recorder's own time per call: its time less the floor's, round by round."""
    return round(statistics.median(a - b for a, b in zip(mine, floor, strict=True)) * 1e6, 1)


def summarise(bench: Bench, times: dict[tuple[str, str], list[float]]) -> dict[str, Any]:
    name = bench.scenario.name
    series = {contestant: times[name, contestant] for contestant in bench.timings}
    result: dict[str, Any] = {
        "client": name,
        "how": bench.scenario.how,
        "kind": bench.scenario.kind,
        "calls": len(bench.calls),
        "tests": len(bench.tests),
        "answer_bytes": round(statistics.mean(len(c.answer.body) for c in bench.calls)),
        "answer_chunks": round(statistics.mean(len(c.answer.chunks) for c in bench.calls), 1),
        "us": {contestant: _us(values) for contestant, values in series.items()},
        "castore_share_us": {
            kind: _share(series[f"castore {kind}"], series["floor"]) for kind in ("warm", "cold")
        },
        "vcr_problem": bench.recordings.vcr_problem,
    }
    if "vcr warm" in series:
        result["vcr_share_us"] = {
            kind: _share(series[f"vcr {kind}"], series["floor"]) for kind in ("warm", "cold")
        }
        for kind in ("warm", "cold"):
            ratio = _ratio(series[f"castore {kind}"], series[f"vcr {kind}"])
            ratio["met"] = ratio["median"] <= TARGET
            result[f"{kind}_ratio"] = ratio
        # No recorder can beat the client's own work: the floor against VCR.py's time.
        result["floor_over_vcr_warm"] = _ratio(series["floor"], series["vcr warm"])
    return result


# --- the report ---------------------------------------------------------------------------------


def _fmt_us(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} µs" if abs(value) >= 100 else f"{value:.1f} µs"


def _fmt_ratio(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "n/a"
    low, high = ratio["spread"]
    return f"{ratio['median']:.3f} ({low:.3f}–{high:.3f})"


def _fmt_met(ratio: dict[str, Any] | None) -> str:
    if ratio is None:
        return "–"
    return "yes" if ratio["met"] else "**no**"


def _share_ratio(row: dict[str, Any], kind: str) -> str:
    vcr = row.get("vcr_share_us")
    if not vcr or vcr[kind] <= 0:
        return "n/a"
    return f"{row['castore_share_us'][kind] / vcr[kind]:.2f}"


def markdown(document: dict[str, Any]) -> str:
    """The report's two tables (warm, cold) and any client VCR.py could not replay."""
    lines = [
        "| client | answer | floor | castore | VCR.py | castore ÷ VCR.py | ≤ 1/10 "
        "| floor ÷ VCR.py | castore's share | VCR.py's share | share ÷ share |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in document["clients"]:
        us, vcr = row["us"], row.get("vcr_share_us") or {}
        lines.append(
            f"| {row['client']} | {row['answer_bytes']:,} B, {row['answer_chunks']:g} "
            f"| {_fmt_us(us['floor'])} | {_fmt_us(us['castore warm'])} "
            f"| {_fmt_us(us.get('vcr warm'))} | {_fmt_ratio(row.get('warm_ratio'))} "
            f"| {_fmt_met(row.get('warm_ratio'))} | {_fmt_ratio(row.get('floor_over_vcr_warm'))} "
            f"| {_fmt_us(row['castore_share_us']['warm'])} | {_fmt_us(vcr.get('warm'))} "
            f"| {_share_ratio(row, 'warm')} |"
        )
    lines += [
        "",
        "| client | castore | VCR.py | castore ÷ VCR.py | ≤ 1/10 | castore's share "
        "| VCR.py's share | share ÷ share | live, loopback |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in document["clients"]:
        us, vcr = row["us"], row.get("vcr_share_us") or {}
        lines.append(
            f"| {row['client']} | {_fmt_us(us['castore cold'])} | {_fmt_us(us.get('vcr cold'))} "
            f"| {_fmt_ratio(row.get('cold_ratio'))} | {_fmt_met(row.get('cold_ratio'))} "
            f"| {_fmt_us(row['castore_share_us']['cold'])} | {_fmt_us(vcr.get('cold'))} "
            f"| {_share_ratio(row, 'cold')} | {_fmt_us(us['loopback'])} |"
        )
    for row in document["clients"]:
        if row["vcr_problem"]:
            lines.append(f"\nVCR.py and {row['client']}: {row['vcr_problem']}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = (
        *("castore", "vcrpy", "httpx", "httpx2", "openai"),
        *("aiohttp", "requests", "urllib3", "botocore"),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in packages},
    }


# --- profiling castore's share ------------------------------------------------------------------


def profile(bench: Bench, calls: int) -> str:
    """castore's warm replay of the scenario under cProfile: where its share goes."""
    timing = bench.timings["castore warm"]
    reps = max(1, calls // len(bench.calls))
    profiler = cProfile.Profile()
    profiler.enable()
    timing(reps)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats("castore", 30)
    return text.getvalue()


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=21, help="shuffled rounds (default 21)")
    parser.add_argument("--reps", type=int, default=2, help="each test's replays a round")
    parser.add_argument("--tests", type=int, default=4, help="tests per client (default 4)")
    parser.add_argument("--calls", type=int, default=3, help="distinct calls a test makes")
    parser.add_argument("--quick", action="store_true", help="1 round, 1 test of 1 call: a smoke")
    parser.add_argument(
        "--synthetic", action="store_true", help="made-up answers: no corpus needed"
    )
    parser.add_argument("--clients", help="comma-separated client names (default: all)")
    parser.add_argument("--profile", metavar="CLIENT", help="profile castore's warm replay")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "clients.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.reps, args.tests, args.calls = 1, 1, 1, 1
    started = time.perf_counter()
    load_before = os.getloadavg()
    count = args.tests * args.calls
    payloads = (
        client_payloads.synthetic(count) if args.synthetic else client_payloads.from_corpus(count)
    )
    chosen = SCENARIOS
    if args.clients or args.profile:
        wanted = {slug(name) for name in (args.clients or args.profile).split(",")}
        chosen = tuple(s for s in SCENARIOS if slug(s.name) in wanted)
        if not chosen:
            names = ", ".join(slug(s.name) for s in SCENARIOS)
            raise SystemExit(f"bench.clients: no client named {sorted(wanted)}; clients: {names}")
    with tempfile.TemporaryDirectory(prefix="castore-bench-clients-") as scratch:
        work = Path(scratch)
        with serving(client_payloads.answers_of(payloads), work) as server:
            store = Store(work / "store")
            benches = []
            for scenario_class in chosen:
                scenario = scenario_class()
                scenario.open(server.base_url)
                tests = as_tests(payloads[scenario.kind], args.calls)
                count = sum(len(test) for test in tests)
                log(f"recording {scenario.name}: {count} calls, castore and VCR.py")
                recordings = record(scenario, tests, store, work / "cassettes")
                benches.append(Bench(scenario, tests, recordings))
            replay_store = Store(work / "store")  # opened afresh, as by a new test session
            for bench in benches:
                bench.timings = timings(bench, replay_store)
                check(bench, server)
            log("every replay answered as the live server did, and none reached it")
            if args.profile:
                for bench in benches:
                    print(profile(bench, 2000))
                return {}
            log(f"timing {len(benches)} clients, {args.rounds} rounds")
            times = run_rounds(benches, args.rounds, args.reps)
            for bench in benches:
                bench.scenario.close()
    document = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(
            [
                "uv run --group bench python -m bench.clients",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "rounds": args.rounds,
        "reps": args.reps,
        "tests": args.tests,
        "calls_per_test": args.calls,
        "payloads": "synthetic" if args.synthetic else "corpus",
        "machine": machine(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "seconds": round(time.perf_counter() - started, 1),
        "clients": [summarise(bench, times) for bench in benches],
        "target": TARGET,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(markdown(document))
    log(f"{document['seconds']:.0f} s; results in {args.output}")
    return document


if __name__ == "__main__":
    main()
