"""castore under VCR.py: footprint and replay time of a pytest-recording suite, stock YAML
cassettes against the same cassettes migrated for ``castore_vcr = true``. Run::

    uv run python -m bench.vcr_persister              # the crewAI corpus, 1x
    uv run python -m bench.vcr_persister --scale 10 --repeat 5

One pytest-recording test per cassette replays every interaction through httpx. The
suite runs with its YAML cassettes, then ``castore import --vcr-cassettes`` migrates them
and it runs again with castore_vcr on; runs are interleaved (a copy of the suite keeps
the YAML), each a fresh pytest process. Reports bytes on disk (cassette files, and for
castore the cassette indexes plus the store) and median wall time with the spread.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import corpus, measure, suites


def folder_bytes(path: Path, pattern: str = "*") -> int:
    return sum(item.stat().st_size for item in path.rglob(pattern) if item.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cassettes = corpus.scale(corpus.load(), args.scale, duplicates=0.0)
    with tempfile.TemporaryDirectory(prefix="castore-bench-vcr-") as work:
        modules = [suites.module_name(number) for number in range(len(cassettes))]
        built = suites.Suites(Path(work) / "yaml", cassettes, modules)
        suites.write_vcr(built)
        yaml_suite = built.suite("vcr")
        castore_suite = Path(work) / "castore-vcr"
        shutil.copytree(yaml_suite, castore_suite)
        cassette_dir = built.fixtures("vcr").relative_to(yaml_suite)
        yaml_bytes = folder_bytes(yaml_suite / cassette_dir, "*.yaml")
        started = time.perf_counter()
        command = [sys.executable, "-m", "castore", "--root", "recordings", "import"]
        migrated = subprocess.run(
            [*command, "--vcr-cassettes", str(cassette_dir)],
            cwd=castore_suite,
            check=False,
            capture_output=True,
            text=True,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"castore import --vcr-cassettes failed: {migrated.stderr}")
        migrate_seconds = time.perf_counter() - started
        ini = (castore_suite / "pytest.ini").read_text().replace("-p no:castore", "")
        (castore_suite / "pytest.ini").write_text(
            ini + "castore_root = recordings\ncastore_vcr = true\n"
        )
        index_bytes = folder_bytes(castore_suite / cassette_dir, "*.yaml")
        store_bytes = folder_bytes(castore_suite / "recordings")
        times: dict[str, list[float]] = {"yaml": [], "castore_vcr": []}
        for _ in range(args.repeat):
            for name, folder in (("yaml", yaml_suite), ("castore_vcr", castore_suite)):
                times[name].append(measure.run_pytest(folder)[0])
    result = {
        "scale": args.scale,
        "tests": len(cassettes),
        "interactions": sum(len(cassette.interactions) for cassette in cassettes),
        "yaml_bytes": yaml_bytes,
        "castore_index_bytes": index_bytes,
        "castore_store_bytes": store_bytes,
        "footprint_ratio": round((index_bytes + store_bytes) / yaml_bytes, 3),
        "migrate_seconds": round(migrate_seconds, 2),
        "replay_seconds": {
            name: {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
            for name, values in times.items()
        },
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"vcr_persister_x{args.scale}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
