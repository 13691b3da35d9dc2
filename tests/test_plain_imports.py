"""castore's modules load past pytest's assertion rewriter (castore/_pytest/plain_imports.py),
in a session of its own: this suite's process imported castore long before."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import QUIET, run_pytest

PROBE = """
import sys

import castore._storage.store


def rewritten_by_pytest(name):
    return type(sys.modules[name].__loader__).__module__ == "_pytest.assertion.rewrite"


def test_castore_loads_past_the_rewriter_and_the_tests_do_not(recorder):
    internals = [name for name in sys.modules if name.startswith("castore.")]
    assert len(internals) > 40  # the plugin's session is up: most of castore is loaded
    # Only the package and the plugin module, which pytest loads before castore's code runs.
    assert {name for name in internals if rewritten_by_pytest(name)} <= {
        "castore._pytest",
        "castore._pytest.plain_imports",
        "castore.pytest_plugin",
    }
    assert rewritten_by_pytest(__name__)
    assert any(type(finder).__module__ == "_pytest.assertion.rewrite" for finder in sys.meta_path)


def test_a_tests_asserts_still_explain_themselves():
    answer = {"tokens": 41}
    assert answer["tokens"] == 42
"""


def test_castore_skips_the_assertion_rewriter_and_leaves_it_to_the_tests(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(PROBE))
    run = run_pytest(tmp_path, "-p", "no:xdist", *QUIET)
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    # The failing test's assert was rewritten: pytest shows the values it compared.
    assert "assert 41 == 42" in run.stdout, run.stdout
