"""The pytest plugin, tested with real pytest sessions (pytester)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from castore import Store
from castore._pytest.report import format_duration
from castore._storage.store import internals

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
{extra}
"""

LLM_MODULE = """
import asyncio, os, time

CALLS_LOG = os.environ.get("CASTORE_CALLS_LOG")

def live(key):
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError(f"the real API was called for {key} during replay")
    if CALLS_LOG:
        with open(CALLS_LOG, "a") as handle:
            handle.write(key + "\\n")

def complete(prompt):
    live(prompt)
    time.sleep(0.05)
    version = os.environ.get("CASTORE_VERSION", "1")
    return {"choices": [{"message": {"content": f"answer to {prompt} v{version}"}}]}

async def acomplete(prompt):
    live(prompt)
    await asyncio.sleep(0.05)
    return {"choices": [{"message": {"content": f"async answer to {prompt}"}}]}

def stream(prompt):
    live(prompt)
    for word in ["answer", "to", prompt]:
        yield {"delta": word}

async def astream(prompt):
    live(prompt)
    for word in ["async", "answer"]:
        await asyncio.sleep(0)
        yield {"delta": word}

def test_sync(recorder):
    response = recorder.get_or_record_sync("sync", lambda: complete("sync"), metadata={"t": 1})
    assert response["choices"][0]["message"]["content"].startswith("answer to sync")

async def test_async(recorder):
    response = await recorder.get_or_record("async", lambda: acomplete("async"))
    assert response["choices"][0]["message"]["content"] == "async answer to async"

def test_stream(recorder):
    chunks = recorder.get_or_record_sync("stream", lambda: stream("s"))
    assert [chunk["delta"] for chunk in chunks] == ["answer", "to", "s"]

async def test_async_stream(recorder):
    chunks = await recorder.get_or_record("astream", lambda: astream("a"))
    assert [chunk["delta"] async for chunk in chunks] == ["async", "answer"]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "RECORD_FIXTURES", "CASTORE_LIVE", "CASTORE_VERSION", "CASTORE_CALLS_LOG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_llm": LLM_MODULE})
    return pytester


def store_of(pytester: pytest.Pytester) -> Store:
    return Store(pytester.path / "tests" / "fixtures" / "castore")


def record(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    with monkeypatch.context() as live:
        live.setenv("CASTORE_LIVE", "1")
        return pytester.runpytest("--castore-mode=new_episodes", *args)


def test_a_module_records_once_then_replays_without_calling_anything(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = record(project, monkeypatch)
    recording.assert_outcomes(passed=4)
    recording.stdout.fnmatch_lines(["*0 replayed, 0 missing or stale, 4 recorded*"])

    replay = project.runpytest()  # CASTORE_LIVE unset: any generator call raises

    replay.assert_outcomes(passed=4)
    replay.stdout.fnmatch_lines(["*4 replayed, 0 missing or stale, 0 recorded*"])
    store = store_of(project)
    assert store.namespaces() == ["tests/test_llm"]
    assert set(store.entries("tests/test_llm")) == {"sync", "async", "stream", "astream"}


def test_the_report_adds_up_the_time_of_real_calls_avoided(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project, monkeypatch).assert_outcomes(passed=4)
    durations = [
        entry.duration or 0 for entry in store_of(project).entries("tests/test_llm").values()
    ]

    replay = project.runpytest()

    expected = format_duration(sum(durations))
    replay.stdout.fnmatch_lines([f"*4 replayed*; {expected} of real calls avoided*"])
    assert sum(durations) >= 0.1  # two calls of 0.05 s each were really timed


def test_a_missing_key_fails_with_key_namespace_store_and_the_command_that_records_it(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = project.runpytest("tests/test_llm.py::test_sync")

    result.assert_outcomes(failed=1)
    store_path = project.path / "tests" / "fixtures" / "castore"
    result.stdout.fnmatch_lines(
        [
            "*MissingRecordingError: no recording for key 'sync' in namespace 'tests/test_llm'",
            f"*store: {store_path}*",
            "*mode:  none (replay only)*",
            "*RECORD_FIXTURES=true *pytest tests/test_llm.py::test_sync",
            "*(or --castore-mode=new_episodes, to record only what is missing)",
        ]
    )
    assert "FileNotFoundError" not in result.stdout.str()
    assert "the real API was called" not in result.stdout.str()

    # The command it gives really records the key.
    command = re.search(r"RECORD_FIXTURES=true (?:uv run )?pytest (\S+)", result.stdout.str())
    assert command is not None
    with monkeypatch.context() as live:
        live.setenv("CASTORE_LIVE", "1")
        live.setenv("RECORD_FIXTURES", "true")
        project.runpytest(command.group(1)).assert_outcomes(passed=1)
    project.runpytest("tests/test_llm.py::test_sync").assert_outcomes(passed=1)


def test_record_fixtures_true_re_records_as_in_the_seeds(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project, monkeypatch).assert_outcomes(passed=4)
    assert (
        store_of(project)
        .get("tests/test_llm", "sync")["choices"][0]["message"]["content"]
        .endswith("v1")
    )

    monkeypatch.setenv("RECORD_FIXTURES", "true")
    monkeypatch.setenv("CASTORE_LIVE", "1")
    monkeypatch.setenv("CASTORE_VERSION", "2")
    rerecord = project.runpytest()
    rerecord.assert_outcomes(passed=4)
    rerecord.stdout.fnmatch_lines(["*mode all: re-record everything*", "*4 recorded*"])

    monkeypatch.delenv("RECORD_FIXTURES")
    monkeypatch.delenv("CASTORE_LIVE")
    project.runpytest().assert_outcomes(passed=4)
    assert (
        store_of(project)
        .get("tests/test_llm", "sync")["choices"][0]["message"]["content"]
        .endswith("v2")
    )


SCHEMA_MODULE = """
import os, pytest

@pytest.mark.castore(schema_version={version!r})
def test_ir(recorder):
    def translate():
        if os.environ.get("CASTORE_LIVE") != "1":
            raise AssertionError("called during replay")
        return {{"ir": "v{version}"}}
    assert recorder.get_or_record_sync("ir", translate) == {{"ir": "v{version}"}}
"""


def test_a_schema_change_fails_replay_naming_both_versions_and_re_records_when_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_ir": SCHEMA_MODULE.format(version=1)})
    record(pytester, monkeypatch).assert_outcomes(passed=1)

    pytester.makepyfile(**{"tests/test_ir": SCHEMA_MODULE.format(version=2)})
    stale = pytester.runpytest()

    stale.assert_outcomes(failed=1)
    stale.stdout.fnmatch_lines(
        [
            "*StaleRecordingError: stale recording for key 'ir' in namespace 'tests/test_ir': "
            "it was recorded with schema version 1, and the recorder now declares 2",
            "*RECORD_FIXTURES=true *pytest tests/test_ir.py::test_ir",
        ]
    )
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)


AGE_MODULE = """
import pytest

@pytest.mark.castore(max_age="30d", on_expired={on_expired!r})
def test_old(recorder):
    assert recorder.get_or_record_sync("old", lambda: "fresh") == "fresh"
"""


@pytest.mark.parametrize(
    ("on_expired", "outcome", "line"),
    [
        (
            "warn",
            {"passed": 1, "warnings": 1},
            "*ExpiredRecordingWarning: recording 'old'*40 days*",
        ),
        ("fail", {"failed": 1}, "*ExpiredRecordingError: stale recording for key 'old'*40 days*"),
    ],
)
def test_an_old_recording_warns_or_fails_as_configured(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    on_expired: str,
    outcome: dict[str, int],
    line: str,
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_age": AGE_MODULE.format(on_expired=on_expired)})
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    index = internals(store_of(pytester)).indexes.path("tests/test_age")
    document = json.loads(index.read_text())
    document["entries"]["old"]["recorded_at"] = (
        dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    ).isoformat()
    index.write_text(json.dumps(document))

    result = pytester.runpytest()

    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([line])


def test_selection_with_k_or_a_node_id_marks_nothing_unused(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project, monkeypatch).assert_outcomes(passed=4)
    store_of(project).put("tests/test_llm", "orphan", "no test asks for this")
    last_run = project.path / "tests" / "fixtures" / "castore" / ".castore" / "last-run.json"

    partial = project.runpytest("-k", "test_sync")
    partial.assert_outcomes(passed=1)
    assert "orphan" not in partial.stdout.str()
    assert "orphan" not in last_run.read_text()

    single = project.runpytest("tests/test_llm.py::test_async")
    single.assert_outcomes(passed=1)
    assert "orphan" not in single.stdout.str()
    assert "orphan" not in last_run.read_text()

    full = project.runpytest()
    full.assert_outcomes(passed=4)
    full.stdout.fnmatch_lines(
        ["*1 recording(s) that no test asked for*", "*tests/test_llm: orphan"]
    )
    assert json.loads(last_run.read_text())["namespaces"]["tests/test_llm"]["unused"] == ["orphan"]

    # A later partial run keeps what the complete run found, for `castore prune`.
    project.runpytest("-k", "test_sync").assert_outcomes(passed=1)
    assert json.loads(last_run.read_text())["namespaces"]["tests/test_llm"]["unused"] == ["orphan"]


def test_a_failing_test_keeps_its_module_from_being_judged(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project, monkeypatch).assert_outcomes(passed=4)
    project.makepyfile(
        **{"tests/test_llm": LLM_MODULE + "\ndef test_broken(recorder):\n    assert False\n"}
    )
    store_of(project).put("tests/test_llm", "orphan", "unused")

    result = project.runpytest()

    result.assert_outcomes(passed=4, failed=1)
    assert "orphan" not in result.stdout.str()


def test_namespaces_follow_the_module_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(
        **{
            "tests/integration/test_translate": """
                def test_it(recorder):
                    assert recorder.namespace == "tests/integration/test_translate"
                    recorder.get_or_record_sync("k", lambda: 1)
            """
        }
    )
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    assert store_of(pytester).namespaces() == ["tests/integration/test_translate"]


CONFTEST_IR = """
import dataclasses, pytest

@dataclasses.dataclass
class IntermediateRepresentation:
    name: str
    parameters: list[str]

@pytest.fixture
def ir_recorder(recorder_factory):
    return recorder_factory("ir_responses", type=IntermediateRepresentation)
"""


def test_a_user_fixture_with_its_own_namespace_and_type_is_three_lines_of_conftest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makeconftest(CONFTEST_IR)
    pytester.makepyfile(
        **{
            "tests/test_ir": """
                import os
                from conftest import IntermediateRepresentation as IR

                async def test_translation(ir_recorder):
                    async def translate():
                        assert os.environ.get("CASTORE_LIVE") == "1"
                        return IR("find_index", ["xs", "x"])
                    ir = await ir_recorder.get_or_record("test_find_index", translate)
                    assert isinstance(ir, IR)
                    assert ir.name == "find_index"
            """
        }
    )
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
    assert store_of(pytester).namespaces() == ["ir_responses"]


def test_root_and_mode_come_from_the_ini_file_and_the_command_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(
        ".ini", pytest=INI.format(extra="castore_root = recordings\ncastore_mode = new_episodes")
    )
    pytester.makepyfile(
        test_one="def test_it(recorder):\n    recorder.get_or_record_sync('k', lambda: 1)\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)  # the ini's mode records
    assert Store(pytester.path / "recordings").namespaces() == ["test_one"]

    pytester.runpytest("--castore-root=elsewhere", "--castore-mode=none").assert_outcomes(failed=1)
    pytester.runpytest("--castore-root=elsewhere").assert_outcomes(passed=1)
    assert Store(pytester.path / "elsewhere").namespaces() == ["test_one"]


def test_on_ci_a_recording_mode_from_the_ini_file_does_not_call_the_api(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra="castore_mode = new_episodes"))
    pytester.makepyfile(
        test_one="def test_it(recorder):\n    recorder.get_or_record_sync('k', lambda: 1)\n"
    )
    monkeypatch.setenv("CI", "true")

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording for key 'k'*", "*CI is set*"])


def test_a_marker_chooses_the_mode_of_one_test(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(
        test_one="""
            import pytest
            calls = []

            @pytest.mark.castore(mode="off")
            def test_live(recorder):
                recorder.get_or_record_sync("k", lambda: calls.append(1))
                recorder.get_or_record_sync("k", lambda: calls.append(1))
                assert calls == [1, 1]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / "tests").exists()  # off: nothing stored


def test_xdist_workers_record_every_key_once_and_the_report_adds_up(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.makepyfile(
        **{
            "tests/test_llm": LLM_MODULE
            + """
def test_shared_a(recorder):
    assert recorder.get_or_record_sync("shared", lambda: complete("shared"))

def test_shared_b(recorder):
    assert recorder.get_or_record_sync("shared", lambda: complete("shared"))
"""
        }
    )
    calls_log = tmp_path / "calls.log"
    monkeypatch.setenv("CASTORE_CALLS_LOG", str(calls_log))
    monkeypatch.setenv("CASTORE_LIVE", "1")

    recording = project.runpytest_inprocess("-n", "2", "--castore-mode=new_episodes")

    recording.assert_outcomes(passed=6)
    assert sorted(calls_log.read_text().split()) == ["a", "async", "s", "shared", "sync"]
    recording.stdout.fnmatch_lines(["*1 replayed, 0 missing or stale, 5 recorded*"])

    monkeypatch.delenv("CASTORE_LIVE")
    store_of(project).put("tests/test_llm", "orphan", "unused")
    replay = project.runpytest_inprocess("-n", "2")

    replay.assert_outcomes(passed=6)
    replay.stdout.fnmatch_lines(
        ["*6 replayed, 0 missing or stale, 0 recorded*", "*tests/test_llm: orphan"]
    )


def test_a_clean_whole_suite_run_never_judges_namespaces_it_did_not_touch(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another suite (or a script) may share the store: silence is not proof of disuse."""
    record(project, monkeypatch).assert_outcomes(passed=4)
    store_of(project).put("examples/test_other_suite", "theirs", "used by another suite")
    store_of(project).put("shared_by_factory", "theirs", "used by another suite")

    result = project.runpytest()

    result.assert_outcomes(passed=4)
    assert "theirs" not in result.stdout.str()
    last_run = project.path / "tests" / "fixtures" / "castore" / ".castore" / "last-run.json"
    assert "theirs" not in last_run.read_text()


CONFIGURED_CONFTEST = """
import pytest

def scrub(value):
    return {**value, "secret": "[scrubbed]"}

@pytest.fixture
def castore_config():
    return {"schema_version": 7, "redact": scrub}

def pytest_castore_configure(config, store):
    config.castore_configured = getattr(config, "castore_configured", 0) + 1
    store.put("configured", "by-hook", {"root": str(store.root)})
"""

CONFIGURED_MODULE = """
import pytest

def test_defaults_from_castore_config(recorder, pytestconfig):
    value = recorder.get_or_record_sync("k", lambda: {"secret": "sk-live", "answer": 42})
    assert value == {"secret": "[scrubbed]", "answer": 42}
    assert recorder.schema_version == 7
    assert pytestconfig.castore_configured == 1

@pytest.mark.castore(schema_version=8)
def test_the_marker_beats_castore_config(recorder, pytestconfig):
    assert recorder.schema_version == 8
    assert recorder.get_or_record_sync("m", lambda: {"secret": "x"}) == {"secret": "[scrubbed]"}

def test_a_factory_option_beats_both(recorder_factory, pytestconfig):
    assert recorder_factory("other", schema_version=9).schema_version == 9
    assert pytestconfig.castore_configured == 1
"""


def test_castore_config_sets_recorder_defaults_and_the_configure_hook_runs_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makeconftest(CONFIGURED_CONFTEST)
    pytester.makepyfile(**{"tests/test_configured": CONFIGURED_MODULE})
    record(pytester, monkeypatch).assert_outcomes(passed=3)
    store = store_of(pytester)
    entry = store.entry("tests/test_configured", "k")
    assert entry is not None and entry.schema == 7
    assert store.get("tests/test_configured", "k") == {"secret": "[scrubbed]", "answer": 42}
    assert store.entry("tests/test_configured", "m").schema == 8  # type: ignore[union-attr]
    assert store.get("configured", "by-hook") == {"root": str(store.root)}


def test_a_run_that_re_records_says_what_castore_gc_can_now_collect(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, bug 6: re-recording leaves the old blob behind; the report says so."""
    first = record(project, monkeypatch)
    first.assert_outcomes(passed=4)
    assert "castore gc" not in first.stdout.str()  # nothing replaced yet
    with monkeypatch.context() as changed:
        changed.setenv("CASTORE_VERSION", "2")  # the fake API now answers differently
        rerecorded = record(project, monkeypatch, "--castore-mode=all")
    rerecorded.assert_outcomes(passed=4)
    rerecorded.stdout.fnmatch_lines(
        ["*1 blob(s) (* KiB) are no longer referenced*`castore gc` removes them*"]  # sync only
    )
    replay = project.runpytest()
    assert "no longer referenced" not in replay.stdout.str()  # replay-only: nothing said


STALE_MODULE = """
import dataclasses, os

FIELD = os.environ.get("ANSWER_FIELD", "text")
Answer = dataclasses.make_dataclass("Answer", [(FIELD, str)])

def call():
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    return Answer(**{FIELD: "hello"})

def test_typed(recorder_factory):
    recorder = recorder_factory(type=Answer)
    assert getattr(recorder.get_or_record_sync("typed", call), FIELD) == "hello"
"""


def test_a_stale_recording_is_counted_and_listed_and_new_episodes_re_records_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, bug 1: a recording the type no longer reads printed no report section."""
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_typed": STALE_MODULE})
    record(pytester, monkeypatch).assert_outcomes(passed=1)
    monkeypatch.setenv("ANSWER_FIELD", "content")  # the dataclass field was renamed

    stale = pytester.runpytest()
    stale.assert_outcomes(failed=1)
    stale.stdout.fnmatch_lines(
        ["*0 replayed, 1 missing or stale, 0 recorded*", "*stale: tests/test_typed :: typed"]
    )
    assert "--castore-mode=new_episodes" in stale.stdout.str()

    rerecorded = record(pytester, monkeypatch)  # --castore-mode=new_episodes
    rerecorded.assert_outcomes(passed=1)
    rerecorded.stdout.fnmatch_lines(["*0 replayed, 0 missing or stale, 1 recorded*"])
    pytester.runpytest().assert_outcomes(passed=1)


SCOPED_MODULE = """
import os, pytest

def call(prompt):
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    return {"answer": prompt}

@pytest.fixture(scope="module")
def module_llm(module_recorder_factory):
    return module_recorder_factory()

@pytest.fixture(scope="session")
def shared_llm(session_recorder_factory):
    return session_recorder_factory("shared/llm")

def test_module_scoped(module_llm):
    assert module_llm.get_or_record_sync("m", lambda: call("m")) == {"answer": "m"}

def test_session_scoped(shared_llm):
    assert shared_llm.get_or_record_sync("s", lambda: call("s")) == {"answer": "s"}
"""


def test_module_and_session_scoped_recorder_factories_record_and_replay(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a module-scoped fixture using recorder_factory failed with ScopeMismatch."""
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_scoped": SCOPED_MODULE})
    record(pytester, monkeypatch).assert_outcomes(passed=2)
    replay = pytester.runpytest()
    replay.assert_outcomes(passed=2)
    replay.stdout.fnmatch_lines(["*2 replayed, 0 missing or stale, 0 recorded*"])
    store = store_of(pytester)
    assert store.namespaces() == ["shared/llm", "tests/test_scoped"]


def test_a_session_scoped_recorder_without_a_namespace_says_what_to_pass(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(
        **{
            "tests/test_nameless": """
import pytest

@pytest.fixture(scope="session")
def nameless(session_recorder_factory):
    return session_recorder_factory()

def test_it(nameless):
    pass
"""
        }
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*session-scoped recorder has no test module*"])


def test_a_recording_time_error_shows_the_test_line_not_castore_frames(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: recording-time errors showed about 40 lines of castore's own frames."""
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(
        **{
            "tests/test_unstorable": """
def test_unstorable(recorder):
    recorder.get_or_record_sync("k", lambda: {"a": object()})
"""
        }
    )
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "UnencodableValueError: cannot record key 'k'" in output
    assert "castore/_storage" not in output and "castore/_recording" not in output


HAND_MADE = """
import os
from castore import Recorder

def call():
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    return {"answer": 42}

def test_hand_made():
    recorder = Recorder("tests/fixtures/castore", "shared/hand_made")
    assert recorder.get_or_record_sync("k", call) == {"answer": 42}
"""


def test_a_recorder_made_by_hand_resolves_against_the_rootdir_and_follows_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: Recorder("tests/fixtures/castore", ...) resolved against the current
    directory (cd tests && pytest looked in tests/tests/...), ignored RECORD_FIXTURES and
    was missing from the report."""
    pytester.makefile(".ini", pytest=INI.format(extra=""))
    pytester.makepyfile(**{"tests/test_hand": HAND_MADE})
    monkeypatch.chdir(pytester.path / "tests")
    monkeypatch.setenv("CASTORE_LIVE", "1")
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    recorded = pytester.runpytest_inprocess()
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["*0 replayed, 0 missing or stale, 1 recorded*"])
    assert not (pytester.path / "tests" / "tests").exists()
    assert "k" in store_of(pytester).entries("shared/hand_made")

    monkeypatch.delenv("CASTORE_LIVE")
    monkeypatch.delenv("RECORD_FIXTURES")
    replayed = pytester.runpytest_inprocess()
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*1 replayed, 0 missing or stale, 0 recorded*"])


def test_the_castore_http_marker_sets_its_fixture_up_after_wider_scopes_and_before_the_tests_own(
    pytester: pytest.Pytester,
) -> None:
    """The marker turns the fixture on without an autouse fixture (which would cost every
    test of every session a set-up): only marked items get it, a marked parameter does
    not lend it to its unmarked sibling, and it sits where an autouse fixture would."""
    pytester.makeini(INI.format(extra=""))
    pytester.makeconftest(
        """
        import httpx, pytest

        UNPATCHED = httpx.Client._send_single_request

        @pytest.fixture(scope="session")
        def session_view():
            return httpx.Client._send_single_request is UNPATCHED

        @pytest.fixture
        def function_view():
            return httpx.Client._send_single_request is UNPATCHED
        """
    )
    pytester.makepyfile(
        test_order="""
        import pytest

        MARKED = pytest.param(True, marks=pytest.mark.castore_http)

        @pytest.mark.parametrize("marked", [MARKED, False])
        def test_views(marked, session_view, function_view, request):
            assert session_view  # set up (in the marked test) before the interception
            assert function_view is not marked  # the test's own fixtures see it on
            assert ("castore_http" in request.fixturenames) is marked
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


MARKED_MODULE = """
import pytest

pytestmark = [pytest.mark.castore(mode="all"), pytest.mark.filterwarnings("ignore")]


def test_module_only():
    pass


@pytest.mark.castore(namespace="own")
@pytest.mark.castore_http(match_on=["method"])
def test_own_marks():
    pass


@pytest.mark.castore(schema_version=2)
class TestClass:
    @pytest.mark.castore(max_age="1d")
    def test_in_class(self):
        pass

    def test_class_only(self):
        pass


@pytest.mark.parametrize(
    "n", [1, pytest.param(2, marks=pytest.mark.castore(namespace="param"))]
)
def test_params(n):
    pass
"""


def test_marker_walk_matches_pytest(pytester: pytest.Pytester) -> None:
    """closest_marker and marks_named (the plugin's cheap walk) find what pytest's own
    get_closest_marker and iter_markers find, on marks at every level."""
    from castore._pytest.marker_fixtures import closest_marker, marks_named  # noqa: PLC0415

    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    items = pytester.getitems(MARKED_MODULE)
    assert len(items) == 6
    names = ("castore", "castore_http", "filterwarnings", "parametrize", "absent")
    for item in items:
        for name in names:
            assert closest_marker(item, name) is item.get_closest_marker(name), (item, name)
        wanted = ("castore", "castore_http")
        assert list(marks_named(item, wanted)) == [
            mark for mark in item.iter_markers() if mark.name in wanted
        ]
    found = {item.name: closest_marker(item, "castore").kwargs for item in items}  # type: ignore[union-attr]
    assert found == {
        "test_module_only": {"mode": "all"},
        "test_own_marks": {"namespace": "own"},
        "test_in_class": {"max_age": "1d"},
        "test_class_only": {"schema_version": 2},
        "test_params[1]": {"mode": "all"},
        "test_params[2]": {"namespace": "param"},
    }
