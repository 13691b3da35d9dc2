"""How long ``castore diff`` takes when every value was re-recorded. Run::

    uv run python -m bench.diff                  # 1x and 10x the corpus
    uv run python -m bench.diff --scales 1,10,100 --repeat 5

Each scale records the crewAI corpus (times the scale) into a store in a git repository
and commits it. Then every value is re-recorded: new ids, dates and request ids
everywhere, and for one answer in ten a changed body too, as a model upgrade would give;
old blobs are collected and the result committed. ``castore diff HEAD~1 HEAD`` is then
timed as a user runs it (a fresh process), plain and with ignore patterns, interleaved
with its peer in the same run: ``git diff --stat HEAD~1 HEAD`` over the same store, the
cost of merely listing the change. The report gives medians, the spread, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import corpus
from castore import Store

IGNORE = ["--ignore", "$..id", "--ignore", "$..created", "--ignore", "$..headers"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def changed_body(response: dict[str, Any], number: int) -> dict[str, Any] | None:
    """The same response with its answer text edited (a word replaced), or None when its
    body has no " the " to replace."""
    body = response.get("body", {})
    text = body.get("string")
    if isinstance(text, str) and " the " in text:
        body = {**body, "string": text.replace(" the ", f" a{number % 7} ", 1)}
        return {**response, "body": body}
    return None


def build(root: Path, cassettes: list[corpus.Cassette]) -> tuple[int, int]:
    """Record, commit, re-record everything, commit: (entries, entries with new text)."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bench@castore.invalid")
    git(repo, "config", "user.name", "bench")
    store = Store(repo / "recordings")
    entries = 0
    with store.batch():
        for number, cassette in enumerate(cassettes):
            for item in cassette.interactions:
                store.put(f"tests/test_{number:05d}", item.key, item.response)
                entries += 1
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "recorded")
    store = Store(repo / "recordings")
    edited = 0
    with store.batch():
        for number, cassette in enumerate(cassettes):
            for position, item in enumerate(cassette.interactions):
                fresh = corpus.rerecorded(item.response, f"again/{number}/{position}")
                if (number + position) % 10 == 0 and (edit := changed_body(fresh, number)):
                    fresh = edit
                    edited += 1
                store.put(f"tests/test_{number:05d}", item.key, fresh)
    subprocess.run(
        [sys.executable, "-m", "castore", "--root", str(repo / "recordings"), "gc"],
        check=True,
        capture_output=True,
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "re-recorded")
    return entries, edited


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if run.returncode not in (0, 1):
        raise RuntimeError(f"{command} exited {run.returncode}: {run.stderr}{run.stdout[-2000:]}")
    return elapsed, run.stdout


def measure(scale: int, repeat: int, work: Path) -> dict[str, Any]:
    cassettes = corpus.scale(corpus.load(), scale, duplicates=0.0)
    started = time.perf_counter()
    entries, edited = build(work / f"x{scale}", cassettes)
    built = time.perf_counter() - started
    repo = work / f"x{scale}" / "repo"
    castore = [sys.executable, "-m", "castore", "--root", "recordings", "diff", "HEAD~1", "HEAD"]
    commands = {
        "castore diff": castore,
        "castore diff --ignore": [*castore, *IGNORE, "--stat"],
        "castore diff --json": [*castore, "--json"],
        "git diff --stat": ["git", "diff", "--stat", "HEAD~1", "HEAD", "--", "recordings"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    outputs: dict[str, str] = {}
    for _ in range(repeat):  # interleaved: each round runs every command once
        for name, command in commands.items():
            elapsed, outputs[name] = timed(command, repo)
            times[name].append(elapsed)
    report = json.loads(outputs["castore diff --json"])
    peer = statistics.median(times["git diff --stat"])
    return {
        "scale": scale,
        "entries": entries,
        "edited": edited,
        "build_seconds": round(built, 1),
        "reported_changed": report["changed"],
        "reported_with_ignores": outputs["castore diff --ignore"].strip().splitlines()[-1],
        # With ids, dates and headers ignored, exactly the edited answers are changes.
        "ignores_find_exactly_the_edits": outputs["castore diff --ignore"]
        .strip()
        .splitlines()[-1]
        .startswith(f" {edited} of {entries} answer(s) changed"),
        "seconds": {
            name: {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
                "vs_git_diff_stat": round(statistics.median(values) / peer, 1),
            }
            for name, values in times.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="castore-bench-diff-") as folder:
        for scale in (int(text) for text in args.scales.split(",")):
            result = measure(scale, args.repeat, Path(folder))
            results.append(result)
            print(json.dumps(result, indent=2), flush=True)
    out = Path(__file__).parent / "results" / "diff.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
