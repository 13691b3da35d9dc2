"""castore/_pytest/judging.py's pure judgement, rule by rule: which namespaces a run may
speak for, and which of their entries no test asked for. (tests/test_plugin.py and
test_cli.py's prune test run the same rules in real sessions.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from castore._pytest.judging import (
    complete_modules,
    judge,
    module_of,
    narrowed_modules,
    ran_whole_suite,
    selected_whole_suite,
)
from castore._storage.last_run import (
    Judgement,
    last_run_path,
    load_judgements,
    save_judgements,
)

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
INDEXES = {
    "tests/test_a": {"used", "stale"},
    "tests/test_b": {"kept", "old"},
    "shared": {"x", "y"},
}


def test_a_node_id_s_module_is_its_path_part() -> None:
    assert module_of("tests/test_a.py::TestX::test_y[1-2]") == "tests/test_a.py"
    assert module_of("tests/test_a.py") == "tests/test_a.py"


def test_a_module_named_with_a_test_on_the_command_line_is_narrowed(tmp_path: Path) -> None:
    started = tmp_path / "tests"
    narrowed = narrowed_modules(["test_a.py::test_one", "test_b.py", "-k", "x"], started, tmp_path)
    assert narrowed == {"tests/test_a.py"}


def test_a_module_is_complete_only_if_every_test_ran_clean_and_none_was_cut() -> None:
    collected = ["a.py::t1", "a.py::t2", "b.py::t1", "c.py::t1", "d.py::t1"]
    clean = {"a.py::t1": True, "a.py::t2": True, "b.py::t1": False, "c.py::t1": True}
    complete = complete_modules(collected, clean, spoiled={"c.py"})
    assert complete == {"a.py"}  # b failed, c was narrowed, d never reported


def test_naming_the_testpaths_or_a_folder_above_the_rootdir_selects_the_whole_suite(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    assert selected_whole_suite([], root, root, ["tests"])
    assert selected_whole_suite(["tests"], root, root, ["tests"])
    assert selected_whole_suite([str(tmp_path)], root / "tests", root, ["tests"])
    assert not selected_whole_suite(["tests/test_a.py"], root, root, ["tests"])
    assert not selected_whole_suite(["tests::test_x"], root, root, ["tests"])


def test_the_whole_suite_ran_only_with_everything_collected_passing() -> None:
    clean = {"a.py::t": True, "b.py::t": True}
    whole = {
        "exitstatus": 0,
        "collected": set(clean),
        "clean": clean,
        "deselected": set(),
        "whole_suite_selected": True,
    }
    assert ran_whole_suite(**whole)
    for spoiler in (
        {"exitstatus": 1},
        {"deselected": {"c.py::t"}},
        {"collected": set()},
        {"clean": {"a.py::t": True, "b.py::t": False}},
        {"whole_suite_selected": False},
    ):
        assert not ran_whole_suite(**{**whole, **spoiler}), spoiler


def keys_of(namespace: str) -> set[str]:
    return INDEXES[namespace]


def test_a_whole_clean_suite_judges_every_namespace_it_touched() -> None:
    verdicts = judge(
        tests={"tests/test_a": {"tests/test_a.py::t"}, "shared": {"tests/test_b.py::t"}},
        used={"tests/test_a": {"used"}, "shared": {"x", "y"}},
        complete=set(),
        whole_suite=True,
        judged_at=WHEN,
        keys_of=keys_of,
    )
    assert verdicts == {
        "tests/test_a": Judgement(WHEN, frozenset({"stale"})),
        "shared": Judgement(WHEN, frozenset()),
    }  # tests/test_b was not touched: another suite may use it, so no verdict


def test_a_partial_run_judges_only_the_own_namespaces_of_complete_modules() -> None:
    verdicts = judge(
        tests={
            "tests/test_a": {"tests/test_a.py::t1", "tests/test_a.py::t2"},
            "tests/test_b": {"tests/test_b.py::t"},  # its module did not complete
            "shared": {"tests/test_a.py::t1"},  # not a module's own namespace
        },
        used={"tests/test_a": {"used"}, "tests/test_b": {"kept"}, "shared": {"x"}},
        complete={"tests/test_a.py"},
        whole_suite=False,
        judged_at=WHEN,
        keys_of=keys_of,
    )
    assert verdicts == {"tests/test_a": Judgement(WHEN, frozenset({"stale"}))}


def test_a_namespace_used_from_another_module_is_not_that_module_s_own() -> None:
    verdicts = judge(
        tests={"tests/test_a": {"tests/test_a.py::t", "tests/test_c.py::t"}},
        used={"tests/test_a": {"used"}},
        complete={"tests/test_a.py", "tests/test_c.py"},
        whole_suite=False,
        judged_at=WHEN,
        keys_of=keys_of,
    )
    assert verdicts == {}


def test_a_run_that_judges_as_the_last_one_did_leaves_last_run_json_unwritten(
    tmp_path: Path,
) -> None:
    state = tmp_path / ".castore"
    verdict = {"tests/test_a": Judgement(WHEN, frozenset({"stale"}))}
    save_judgements(state, verdict, {})
    path = last_run_path(state)
    written = path.stat()
    assert save_judgements(state, verdict, {}) == verdict
    assert path.stat().st_ino == written.st_ino  # not replaced: no write, no fsync
    later = {"tests/test_a": Judgement(WHEN + dt.timedelta(days=1), frozenset({"stale"}))}
    save_judgements(state, later, {})
    assert path.stat().st_ino != written.st_ino  # a changed verdict is written, atomically
    assert load_judgements(state) == later
