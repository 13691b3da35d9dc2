"""``python -m bench.clients`` end to end in its quickest form: every client records with
castore and with VCR.py against the loopback answer server, every contestant's replay is
checked against the live answer, and the report is written. Nothing here is timed
against anything (speed is bench/'s job), and no corpus is needed (``--synthetic``)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import clients
from bench.client_scenarios import SCENARIOS


def test_the_client_benchmark_runs_every_client_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "clients.json"
    document = clients.main(["--quick", "--synthetic", "--output", str(output)])

    assert json.loads(output.read_text()) == document
    rows = {row["client"]: row for row in document["clients"]}
    assert set(rows) == {scenario.name for scenario in SCENARIOS}
    for name, row in rows.items():
        assert set(row["us"]) >= {"floor", "castore warm", "castore cold", "loopback"}, name
        assert all(value > 0 for value in row["us"].values()), name
        if row["vcr_problem"] is None:
            assert row["warm_ratio"]["median"] > 0 and row["cold_ratio"]["median"] > 0, name
    table = clients.markdown(document)
    assert all(f"| {name} |" in table for name in rows)
