"""The benchmark's plot: footprint and replay time against suite size, from results JSON.

uv run --group bench python -m bench.plot bench/results/results.json docs/benchmarks.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STYLE = {
    "castore": ("castore", "#1b7837", "o"),
    "vcr": ("VCR.py cassettes", "#c51b7d", "s"),
    "seeds": ("seeds' JSON files", "#2166ac", "^"),
    "floor": ("values in memory (floor)", "#777777", "x"),
}


def plot(document: dict[str, Any], output: Path) -> None:
    # matplotlib is in the bench group only: importing bench (tests, docs checks) must
    # not need it, and `uv run mypy` from a fresh clone does not have it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    results = sorted(document["results"], key=lambda result: result["lookups"])
    sizes = [result["lookups"] for result in results]
    figure, (footprint, replay) = plt.subplots(1, 2, figsize=(11, 4.2))
    for approach in ("castore", "vcr", "seeds"):
        label, color, marker = STYLE[approach]
        footprint.plot(
            sizes,
            [result["footprint"][approach]["bytes"] / 2**20 for result in results],
            marker=marker, color=color, label=label,
        )  # fmt: skip
        if all(result.get("git") for result in results):
            footprint.plot(
                sizes,
                [result["git"][approach]["packed"] / 2**20 for result in results],
                marker=marker, color=color, linestyle="--", alpha=0.6,
                label=f"{label}, packed git",
            )  # fmt: skip
    for approach in ("castore", "vcr", "seeds", "floor"):
        label, color, marker = STYLE[approach]
        medians = [result["replay"][approach]["wall"]["median"] for result in results]
        low = [
            m - r["replay"][approach]["wall"]["min"] for m, r in zip(medians, results, strict=True)
        ]
        high = [
            r["replay"][approach]["wall"]["max"] - m for m, r in zip(medians, results, strict=True)
        ]
        replay.errorbar(
            sizes, medians, yerr=[low, high], marker=marker, color=color, label=label, capsize=3
        )
    for axis, title, unit in (
        (footprint, "Fixture footprint", "MiB"),
        (replay, "Replaying the whole suite through pytest", "seconds (median, min-max)"),
    ):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("recorded calls in the suite")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("castore vs VCR.py vs one JSON file per recorder, on real LLM traffic (crewAI)")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
