"""The hostile-input campaign (tests/fuzz_campaign.py), one child process per target.

Each child caps its address space and runs hypothesis over one kind of file castore
reads; every case must end in a correct read or a castore error, within a per-case
timeout. CI size is 50 cases per target; ``CASTORE_CAMPAIGN=full`` runs
2,500 per target (15,000 in all), the size docs/reliability.md reports.

At CI size the cases are drawn the same on every run (``derandomize``). The 50 still
reach every outcome class the 80 of earlier CI runs reached, and the msgpack target's
50 include extensions nested 285 deep and frames of 5 and 20 million objects, the
cases that failed the old codec and the code without the object budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from campaign import size

CAMPAIGN = Path(__file__).with_name("fuzz_campaign.py")
EXAMPLES = size(ci=50, full=2500)
#: The address-space cap each child runs under (Python, zstd and hypothesis need ~400 MB
#: of it mapped), and the peak resident memory a child may reach.
ADDRESS_SPACE_LIMIT = 3 * 2**30
PEAK_RSS_LIMIT = 1 * 2**30


@pytest.mark.parametrize("target", ["msgpack", "frames", "index", "config", "imports", "packs"])
def test_every_hostile_case_ends_in_a_read_or_a_castore_error(tmp_path: Path, target: str) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(CAMPAIGN),
            target,
            str(EXAMPLES),
            str(tmp_path),
            str(ADDRESS_SPACE_LIMIT),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    summary = json.loads(run.stdout.splitlines()[-1])
    refusals = sum(count for name, count in summary["outcomes"].items() if ": ok" not in name)
    print(
        f"\n{target}: {summary['cases']} cases, {refusals} castore errors, 0 other outcomes, "
        f"peak RSS {summary['peak_rss'] / 2**20:.0f} MiB"
    )
    assert summary["cases"] >= EXAMPLES  # hypothesis may run a few more than asked
    assert summary["peak_rss"] < PEAK_RSS_LIMIT, summary
    outcomes = summary["outcomes"]
    # The campaign reaches both outcomes: it is not all refusals nor all clean reads.
    assert any(name.endswith(": ok") for name in outcomes), outcomes
    assert any(not name.endswith(": ok") for name in outcomes), outcomes
