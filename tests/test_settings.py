"""castore/_pytest/settings.py's pure decisions, one rule per test: where the store is and
which mode a session runs in. (tests/test_plugin.py runs the same rules in real sessions.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from castore import Mode
from castore._pytest.settings import decide_mode, module_namespace, resolve_root, truthy


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on", "True"])
def test_truthy_accepts_the_usual_spellings_of_yes(value: str) -> None:
    assert truthy(value)


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off", "2", "y", "enabled"])
def test_truthy_refuses_everything_else(value: str | None) -> None:
    assert not truthy(value)


def test_the_root_option_is_relative_to_where_pytest_was_started(tmp_path: Path) -> None:
    started = tmp_path / "tests"
    root = resolve_root("../store", started, "ignored", tmp_path / "conf", tmp_path / "repo")
    assert root == (tmp_path / "store").resolve()


def test_the_ini_root_is_relative_to_the_ini_file_else_to_the_rootdir(tmp_path: Path) -> None:
    ini_dir, rootpath = tmp_path / "conf", tmp_path / "repo"
    assert resolve_root(None, tmp_path, "rec", ini_dir, rootpath) == (ini_dir / "rec").resolve()
    assert resolve_root(None, tmp_path, "rec", None, rootpath) == (rootpath / "rec").resolve()


def test_without_option_or_ini_the_store_is_tests_fixtures_castore(tmp_path: Path) -> None:
    root = resolve_root(None, tmp_path / "elsewhere", "", tmp_path / "conf", tmp_path)
    assert root == tmp_path / "tests" / "fixtures" / "castore"


def mode(
    *,
    option: str | None = None,
    record_fixtures: str | None = None,
    marker_mode: str | None = None,
    ini_mode: str = "",
    ci: str | None = None,
) -> Mode:
    """decide_mode with everything unset but what a test names."""
    return decide_mode(
        option=option,
        record_fixtures=record_fixtures,
        marker_mode=marker_mode,
        ini_mode=ini_mode,
        ci=ci,
    )


def test_with_nothing_set_a_session_replays_only() -> None:
    assert mode() is Mode.NONE


def test_the_command_line_wins_over_everything_even_on_ci() -> None:
    chosen = mode(
        option="new_episodes", record_fixtures="true", marker_mode="off", ini_mode="all", ci="1"
    )
    assert chosen is Mode.NEW_EPISODES


def test_record_fixtures_records_everything_and_beats_marker_and_ini() -> None:
    assert mode(record_fixtures="true", marker_mode="off", ini_mode="new_episodes") is Mode.ALL
    assert mode(record_fixtures="false", ini_mode="new_episodes") is Mode.NEW_EPISODES


def test_the_marker_beats_the_ini_option() -> None:
    assert mode(marker_mode="off", ini_mode="new_episodes") is Mode.OFF
    assert mode(ini_mode="new-episodes") is Mode.NEW_EPISODES  # spelled with a dash


def test_on_ci_a_recording_mode_from_the_marker_or_ini_is_ignored() -> None:
    assert mode(marker_mode="new_episodes", ci="true") is Mode.NONE
    assert mode(ini_mode="all", ci="1") is Mode.NONE
    assert mode(ini_mode="off", ci="1") is Mode.OFF  # not recording: kept
    assert mode(ini_mode="all", ci="false") is Mode.ALL  # CI=false is no CI
    assert mode(record_fixtures="1", ci="1") is Mode.ALL  # asked for explicitly: kept


def test_an_unknown_mode_names_the_valid_ones_and_the_vcr_spelling() -> None:
    with pytest.raises(ValueError, match="choose one of") as raised:
        mode(option="once")
    assert "new_episodes" in str(raised.value) and "VCR" in str(raised.value)
    with pytest.raises(ValueError, match="unknown castore mode 'sometimes'"):
        mode(ini_mode="sometimes")


def test_a_module_s_namespace_is_its_path_under_the_rootdir_without_py(tmp_path: Path) -> None:
    module = tmp_path / "tests" / "integration" / "test_ir.py"
    assert module_namespace(module, tmp_path) == "tests/integration/test_ir"


def test_a_module_outside_the_rootdir_is_named_by_its_stem(tmp_path: Path) -> None:
    outside = tmp_path.parent / "elsewhere" / "test_far.py"
    assert module_namespace(outside, tmp_path) == "test_far"


@pytest.mark.parametrize(
    "relative",
    [
        "tests/test_a.py",
        "tests/test.b.py",
        "tests/.py",
        "tests/..py",
        "tests/1st.py",
        "tests/é.py",
        "tests/data.txt",
        "tests/test_a.py.py",
        "test_top.py",
    ],
)
def test_a_module_s_namespace_is_what_pathlib_makes_of_its_path(
    tmp_path: Path, relative: str
) -> None:
    """Module names take a string fast path; every name, odd or not, matches pathlib's."""
    module = tmp_path / relative
    expected = module.relative_to(tmp_path).with_suffix("").as_posix()
    assert module_namespace(module, tmp_path) == expected
    sibling = Path(f"{tmp_path}-other") / relative  # shares the rootdir's text as a prefix
    assert module_namespace(sibling, tmp_path) == sibling.stem
