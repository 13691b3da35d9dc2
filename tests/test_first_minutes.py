"""What a new user trips over in the first five minutes (issue 27): a typo in a mode, a
silent recording run, a stale message that names only a top-level field, CI ignoring a
marker's mode without saying so. Each in a real pytest session."""

from __future__ import annotations

import pytest

INI = "[pytest]\ncastore_root = recordings\nasyncio_default_fixture_loop_scope = function\n"

SUITE = """
import os
import time

import pytest


def test_plain(recorder):
    assert recorder.get_or_record_sync("answer", lambda: "forty-two") == "forty-two"


def test_slow(recorder):
    value = recorder.get_or_record_sync("slow", lambda: (time.sleep(0.3), "done")[1])
    assert value == "done"
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_a_typo_in_the_mode_option_is_one_usage_error_naming_the_modes(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_inprocess("--castore-mode=once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --castore-mode: unknown castore mode 'once'; choose one of: none, "
            "new_episodes, all, off (VCR's 'once' records missing keys: use new_episodes)"
        ]
    )
    assert "test_plain" not in result.stdout.str() + result.stderr.str()


def test_a_bad_ini_mode_is_one_usage_error_naming_the_file(project: pytest.Pytester) -> None:
    project.makeini(INI + "castore_mode = recrod\n")
    result = project.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: castore_mode = recrod (*tox.ini): unknown castore mode 'recrod'*"]
    )


MARKED = """
import pytest


@pytest.mark.castore(mdoe="all")
def test_typo_in_a_keyword(recorder):
    pass


@pytest.mark.castore(mode="once", max_age="two days")
def test_bad_values(recorder):
    pass


@pytest.mark.castore_http(match="url")
def test_http_typo():
    pass
"""


def test_bad_marker_options_stop_the_run_before_any_test(project: pytest.Pytester) -> None:
    project.makepyfile(test_marked=MARKED)
    result = project.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: castore: bad marker options:",
            "*test_typo_in_a_keyword: @pytest.mark.castore(mdoe=…) is not an option; it takes:*",
            "*test_bad_values: @pytest.mark.castore(mode='once'): unknown castore mode 'once'*",
            "*test_bad_values: @pytest.mark.castore(max_age='two days'): max_age must be*",
            "*test_http_typo: @pytest.mark.castore_http(match=…) is not an option*",
        ]
    )
    assert result.parseoutcomes() == {}


def test_a_recording_run_shows_its_progress_and_what_it_recorded(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    quiet = project.runpytest_inprocess("-p", "no:cacheprovider")
    quiet.stdout.fnmatch_lines(["test_suite.py RR *", "*2 recorded in 0.3 s of real calls*"])
    verbose = project.runpytest_inprocess("-p", "no:cacheprovider", "-v")
    verbose.stdout.fnmatch_lines(
        [
            "castore recorded test_suite :: slow (0.3 s, unchanged: kept as it was)",
            "test_suite.py::test_slow RECORDED 1*",
            "*2 recorded in 0.3 s of real calls (2 unchanged but for volatile parts*",
            "  recorded: test_suite :: answer (0.0 s)",
            "  recorded: test_suite :: slow (0.3 s)",
        ]
    )


STALE = """
import os


def test_fixed_key(recorder):
    request = {"model": "m", "messages": [{"role": "user", "content": os.environ["PROMPT"]}]}
    assert recorder.get_or_record_sync("fixed", lambda: "answer", request=request) == "answer"
"""


def test_a_stale_request_names_the_path_that_changed_and_the_one_command(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_stale=STALE)
    monkeypatch.setenv("PROMPT", "first")
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    project.runpytest_inprocess("-p", "no:cacheprovider", "-k", "fixed").assert_outcomes(passed=1)
    monkeypatch.delenv("RECORD_FIXTURES")
    monkeypatch.setenv("PROMPT", "second")
    result = project.runpytest_inprocess("-p", "no:cacheprovider", "-k", "fixed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*StaleRecordingError: stale recording for key 'fixed' in namespace 'test_stale': "
            "the request changed since it was recorded: request.messages[[]0[]].content: "
            '"first" → "second"',
            "*to re-record it, run:",
            "*RECORD_FIXTURES=true *pytest test_stale.py::test_fixed_key",
            "*(or --castore-mode=new_episodes, to record only what is missing)",
        ]
    )


CI_MARKED = """
import pytest


@pytest.mark.castore(mode="new_episodes")
def test_asks_to_record(recorder):
    recorder.get_or_record_sync("never recorded", lambda: "live")
"""


def test_in_ci_a_markers_recording_mode_is_ignored_and_the_error_says_why(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_ci=CI_MARKED)
    monkeypatch.setenv("CI", "true")
    result = project.runpytest_inprocess("-p", "no:cacheprovider", "-k", "asks_to_record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MissingRecordingError: no recording for key 'never recorded'*",
            "*CI is set, so castore(mode='new_episodes') is ignored: CI only replays*",
            "*CI is set, so recording modes from ini files and markers are off*",
        ]
    )
