"""How long castore's upkeep commands take on a large store (10,000 blobs by default).

    uv run python bench/maintenance.py [--blobs 10000] [--repeat 3]

Builds a store of distinct LLM-shaped responses, then runs `castore stats`, `verify`,
`gc --dry-run` and `gc` as a user would (a fresh process each time) and prints the
median and min-max wall time of each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from castore import Store


def response(number: int) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{number:08d}",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"Answer {number}: " + "the quick brown fox jumps. " * 40,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100 + number % 50, "completion_tokens": 300},
    }


def build(root: Path, blobs: int) -> None:
    store = Store(root)
    with store.batch():
        for number in range(blobs):
            store.put(f"tests/test_module_{number % 200:03d}", f"key-{number}", response(number))
    # A handful of orphans for gc to find.
    for number in range(blobs, blobs + 10):
        store.put("tests/doomed", f"key-{number}", response(number))
        store.delete("tests/doomed", f"key-{number}")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=False, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "store"
        started = time.perf_counter()
        build(root, args.blobs)
        print(f"built {args.blobs:,} blobs in {time.perf_counter() - started:.1f} s")
        base = [sys.executable, "-m", "castore", "--root", str(root)]
        for name, extra in [
            ("stats", ["stats"]),
            ("verify", ["verify"]),
            ("gc --dry-run", ["gc", "--dry-run"]),
        ]:
            times = [timed(base + extra) for _ in range(args.repeat)]
            print(
                f"castore {name:<13} median {statistics.median(times):6.2f} s  "
                f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"
            )
        print(f"castore gc            {timed([*base, 'gc']):6.2f} s  (once: it deletes)")


if __name__ == "__main__":
    main()
