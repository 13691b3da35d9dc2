"""The castore command on real stores: in-process through click's runner (``cli``), and
as the installed entry point in a real subprocess where only that shows the behaviour."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from conftest import REPO_ROOT, castore, cli

import castore as castore_package
from castore import Entry, Store, request_key
from castore._storage.store import internals

RESPONSE = {"choices": [{"message": {"content": "def find_index(xs, x): ..."}}], "n": 1}


def blob_path(store: Store, entry: Entry) -> Path:
    return store.root / "blobs" / entry.blob[:2] / f"{entry.blob}.zst"


@pytest.fixture
def filled(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "shared-1", RESPONSE, duration=30.0)
    store.put("tests/test_b", "shared-2", RESPONSE, duration=40.0)  # same value: one blob
    store.put("tests/test_b", "big", {"text": "x" * 5000}, metadata={"prompt": "long"})
    store.put(
        "tests/test_b",
        "typed",
        {"raw": b"\x00\xff", "when": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "t": (1, 2)},
    )
    return store


def test_the_installed_command_and_python_m_castore_both_run(filled: Store) -> None:
    """The console script (``castore = "castore.cli:main"``) and ``python -m castore``, as
    real processes: their exit code and output are the command's."""
    script = Path(sys.executable).with_name("castore")
    assert script.is_file(), "the castore console script is not installed in this venv"
    installed = subprocess.run(
        [str(script), "--root", str(filled.root), "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert "checked 3 of 3 blobs and 4 entries: 0 fault(s)" in installed.stdout
    missing = castore("--root", str(filled.root / "absent"), "stats")
    assert missing.returncode == 3
    assert "no store at" in missing.stderr


def test_help_lists_every_subcommand_and_the_exit_codes() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("stats", "ls", "show", "cat", "verify", "gc", "prune", "import", "export"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
    for command in ("stats", "verify", "gc", "prune", "import", "export", "git", "diff"):
        assert cli(command, "--help").returncode == 0


def test_stats_json_counts_namespaces_entries_blobs_and_bytes(filled: Store) -> None:
    result = cli("--root", str(filled.root), "stats", "--json")

    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["namespaces"] == 2
    assert stats["entries"] == 4
    assert stats["blobs"] == 3
    on_disk = sum(
        path.stat().st_size
        for path in filled.root.rglob("*")
        if path.is_file() and ".castore" not in path.parts
    )
    assert stats["bytes"] == on_disk
    assert stats["dedup_ratio"] > 1
    assert stats["largest"][0]["key"] == "big"


def test_the_root_defaults_to_castore_root_in_the_pytest_configuration(
    tmp_path: Path, filled: Store
) -> None:
    project = tmp_path / "project"
    (project / "tests" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        f'[tool.pytest.ini_options]\ncastore_root = "{filled.root.as_posix()}"\n'
    )

    result = cli("ls", cwd=project / "tests" / "deep")

    assert result.returncode == 0, result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()[1:3]] == [
        "tests/test_a",
        "tests/test_b",
    ]


def test_ls_lists_the_entries_of_a_namespace_under_column_headers(filled: Store) -> None:
    result = cli("--root", str(filled.root), "ls", "tests/test_b")
    assert result.returncode == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["recorded", "at", "(UTC)", "size", "key", "about"]
    key_column = header.index("key")
    assert [row[key_column:].split()[0] for row in rows] == ["big", "shared-2", "typed"]
    assert rows[1][key_column:].split()[1:] == ["40.0", "s"]
    listed = json.loads(cli("--root", str(filled.root), "ls", "tests/test_b", "--json").stdout)
    assert listed["shared-2"]["duration"] == 40.0


def test_ls_has_column_headers_and_names_the_largest_entries_by_namespace_and_key(
    filled: Store,
) -> None:
    """Issue 27, item 7: `castore ls` printed bare numbers, and the largest entries only
    as blob hashes. Each namespace shows its entries and size under a header; the largest
    entries name their namespace and key, and say what a hashed key asked."""
    hashed = request_key(model="gpt-4o", messages=[{"role": "user", "content": "Summarise"}])
    filled.put("tests/test_h", hashed, {"text": "y" * 3000}, metadata={"prompt": "Summarise"})

    result = cli("--root", str(filled.root), "ls", "--top", "2")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["entries", "size", "namespace"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "3", "1"]
    assert lines[2].endswith("  tests/test_b") and "5.0 KiB" in lines[2]
    largest = lines[lines.index("largest entries:") + 1 :]
    assert largest[0].split() == ["size", "namespace", "key", "about"]
    assert largest[1].split() == ["4.9", "KiB", "tests/test_b", "big", "prompt=long"]
    assert largest[2].split()[2:] == ["tests/test_h", hashed, "prompt=Summarise"]
    assert len(largest) == 3  # --top 2
    listed = json.loads(cli("--root", str(filled.root), "ls", "--json").stdout)
    shared = filled.entries("tests/test_a")["shared-1"].size
    assert listed["namespaces"][0] == {"namespace": "tests/test_a", "entries": 1, "bytes": shared}
    assert [(item["namespace"], item["key"]) for item in listed["largest"][:2]] == [
        ("tests/test_b", "big"),
        ("tests/test_h", hashed),
    ]
    assert listed["largest"][1]["metadata"] == {"prompt": "Summarise"}


def test_show_prints_the_value_as_json_with_bytes_and_datetimes_faithful(filled: Store) -> None:
    result = cli("--root", str(filled.root), "show", "tests/test_b", "typed")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "raw": {"$base64": "AP8="},
        "when": {"$datetime": "2025-01-02T03:04:05+00:00"},
        "t": {"$tuple": [1, 2]},
    }
    with_entry = json.loads(
        cli("--root", str(filled.root), "show", "tests/test_b", "big", "--entry").stdout
    )
    assert with_entry["entry"]["metadata"] == {"prompt": "long"}


def test_show_of_an_unknown_key_exits_1_naming_it(filled: Store) -> None:
    result = cli("--root", str(filled.root), "show", "tests/test_b", "nope")
    assert result.returncode == 1
    assert "'nope'" in result.stderr


def test_a_missing_store_is_exit_code_3_with_advice(tmp_path: Path) -> None:
    result = cli("--root", str(tmp_path / "absent"), "stats")
    assert result.returncode == 3
    assert "no store at" in result.stderr


def test_cat_shows_a_blob_file_or_a_copy_of_it_as_json(filled: Store, tmp_path: Path) -> None:
    entry = filled.entry("tests/test_a", "shared-1")
    assert entry is not None
    copy = tmp_path / "copy-from-git"
    copy.write_bytes(blob_path(filled, entry).read_bytes())

    for target in (blob_path(filled, entry), copy):
        result = cli("--root", str(filled.root), "cat", str(target))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == RESPONSE


# --- verify ------------------------------------------------------------------------


def test_verify_of_a_sound_store_exits_0(filled: Store) -> None:
    result = cli("--root", str(filled.root), "verify")
    assert result.returncode == 0, result.stdout
    assert "checked 3 of 3 blobs and 4 entries: 0 fault(s)" in result.stdout


def test_verify_reports_every_injected_fault_on_its_own_line_and_exits_1(filled: Store) -> None:
    flipped = filled.entry("tests/test_b", "big")
    missing = filled.put("tests/test_c", "gone", "will be deleted")
    pointer = filled.put("tests/test_c", "pointer", "not pulled")
    orphan = filled.put("tests/test_d", "orphan", "no longer indexed")
    assert flipped is not None
    data = bytearray(blob_path(filled, flipped).read_bytes())
    data[-2] ^= 0xFF
    blob_path(filled, flipped).write_bytes(bytes(data))
    blob_path(filled, missing).unlink()
    blob_path(filled, pointer).write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{'1' * 64}\nsize 10\n"
    )
    filled.delete("tests/test_d", "orphan")
    (filled.root / "blobs" / "ab").mkdir(exist_ok=True)
    (filled.root / "blobs" / "ab" / ".half-written.zst.1234.tmp").write_bytes(b"x")

    result = cli("--root", str(filled.root), "verify")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # The pointer's advice: three lines after the fault lines, the command on its own.
    (advice,) = [n for n, line in enumerate(lines) if "this clone has not downloaded" in line]
    assert lines[advice].startswith("1 file is a git-lfs pointer")
    assert lines[advice + 1] == "    git lfs pull"  # the store is in no git repository
    by_kind = {line.split()[0]: line for line in lines[:advice] + lines[advice + 3 : -1]}
    assert set(by_kind) == {"corrupt", "missing", "lfs-pointer", "orphan", "stray"}
    assert flipped.blob in by_kind["corrupt"] and "tests/test_b :: big" in by_kind["corrupt"]
    assert missing.blob in by_kind["missing"] and "tests/test_c :: gone" in by_kind["missing"]
    assert pointer.blob in by_kind["lfs-pointer"] and "not downloaded" in by_kind["lfs-pointer"]
    assert orphan.blob in by_kind["orphan"] and "castore gc" in by_kind["orphan"]
    assert "half-written" in by_kind["stray"]
    assert lines[-1].endswith("3 fault(s); 2 for `castore gc`")
    assert "(upkeep, not a fault)" in by_kind["orphan"] and "(upkeep" in by_kind["stray"]
    strict = cli("--root", str(filled.root), "verify", "--strict")
    assert strict.returncode == 1


def test_orphans_left_by_re_recording_are_upkeep_not_faults_unless_strict(filled: Store) -> None:
    """Issue 14, bug 6: every re-record or delete used to make verify exit 1."""
    filled.put("tests/test_b", "typed", {"re-recorded": True})  # the old blob is an orphan
    result = cli("--root", str(filled.root), "verify")
    assert result.returncode == 0, result.stdout
    assert "0 fault(s); 1 for `castore gc`" in result.stdout
    report = json.loads(cli("--root", str(filled.root), "verify", "--json").stdout)
    assert report["faults"] == []
    assert [item["kind"] for item in report["upkeep"]] == ["orphan"]
    strict = cli("--root", str(filled.root), "verify", "--strict")
    assert strict.returncode == 1
    cli("--root", str(filled.root), "gc")
    assert cli("--root", str(filled.root), "verify", "--strict").returncode == 0


def test_verify_quarantine_moves_corrupt_blobs_aside(filled: Store) -> None:
    entry = filled.entry("tests/test_b", "big")
    assert entry is not None
    blob_path(filled, entry).write_bytes(b"\x28\xb5\x2f\xfd garbage")

    result = cli("--root", str(filled.root), "verify", "--quarantine", "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [fault["kind"] for fault in report["faults"]] == ["corrupt"]
    assert not blob_path(filled, entry).exists()
    quarantined = Path(report["quarantined"][0])
    assert quarantined.parent == filled.root / ".castore" / "quarantine"
    assert quarantined.read_bytes().endswith(b"garbage")
    # Now it is simply missing, which verify reports as such.
    assert "missing" in cli("--root", str(filled.root), "verify").stdout


def test_verify_can_sample_blob_contents(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.batch():
        for number in range(100):
            store.put("ns", f"k{number}", number)
    result = json.loads(cli("--root", str(tmp_path), "verify", "--sample", "0.1", "--json").stdout)
    assert (result["blobs"], result["blobs_checked"], result["entries"]) == (100, 10, 100)


# --- gc ----------------------------------------------------------------------------


def test_gc_keeps_a_blob_two_namespaces_share_and_removes_orphans(filled: Store) -> None:
    shared = filled.entry("tests/test_a", "shared-1")
    big = filled.entry("tests/test_b", "big")
    assert shared is not None and big is not None
    filled.delete("tests/test_b", "shared-2")  # test_a still uses the shared blob
    filled.delete("tests/test_b", "big")  # nothing uses this one now
    temp = filled.root / "blobs" / "00" / ".x.zst.abc.tmp"
    temp.parent.mkdir(exist_ok=True)
    temp.write_bytes(b"left by a killed writer")
    size = blob_path(filled, big).stat().st_size

    dry = cli("--root", str(filled.root), "gc", "--dry-run")
    assert dry.returncode == 0
    assert f"would remove 1 unreferenced blob(s), {size} B, and 1 temporary file(s)" in dry.stdout
    assert blob_path(filled, big).exists() and temp.exists()  # nothing deleted

    result = cli("--root", str(filled.root), "gc", "--json")

    assert json.loads(result.stdout)["blobs"] == [big.blob]
    assert not blob_path(filled, big).exists()
    assert not temp.exists()
    assert blob_path(filled, shared).exists()
    assert Store(filled.root).get("tests/test_a", "shared-1") == RESPONSE
    assert cli("--root", str(filled.root), "verify").returncode == 0


def test_gc_refuses_to_run_on_an_unreadable_index(filled: Store) -> None:
    internals(filled).indexes.path("tests/test_a").write_text("{broken")

    result = cli("--root", str(filled.root), "gc")

    assert result.returncode == 3
    assert "tests/test_a.json" in result.stderr
    assert len(list(Store(filled.root).blobs())) == 3  # nothing deleted on its word


# --- prune -------------------------------------------------------------------------


def test_prune_drops_what_the_last_complete_run_did_not_use_then_collects(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("RECORD_FIXTURES", raising=False)
    pytester.makefile(
        ".ini",
        pytest="[pytest]\ncastore_root = store\nasyncio_default_fixture_loop_scope = function\n",
    )
    pytester.makepyfile(
        test_suite="""
            def test_used(recorder):
                assert recorder.get_or_record_sync("used", lambda: "kept") == "kept"
        """
    )
    pytester.runpytest("--castore-mode=new_episodes").assert_outcomes(passed=1)
    store = Store(pytester.path / "store")
    stale = store.put("test_suite", "stale", "no test asks for this any more")
    pytester.runpytest().assert_outcomes(passed=1)  # the complete run that judges
    store.put("test_suite", "recorded-later", "after the judging run")

    dry = cli("prune", "--dry-run", cwd=pytester.path)
    assert dry.returncode == 0, dry.stderr
    assert "would drop test_suite :: stale" in dry.stdout
    assert "recorded-later" not in dry.stdout
    assert Store(pytester.path / "store").contains("test_suite", "stale")

    refused = cli("prune", cwd=pytester.path, stdin="")
    assert refused.returncode == 2  # no terminal and no --yes: nothing deleted
    assert Store(pytester.path / "store").contains("test_suite", "stale")

    done = cli("prune", "--yes", cwd=pytester.path)

    assert done.returncode == 0, done.stderr
    after = Store(pytester.path / "store")
    assert set(after.entries("test_suite")) == {"used", "recorded-later"}
    assert not blob_path(after, stale).exists()
    pytester.runpytest().assert_outcomes(passed=1)


def test_delete_removes_keys_or_a_whole_namespace(filled: Store) -> None:
    result = cli("--root", str(filled.root), "delete", "tests/test_b", "big", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted 1 entry of tests/test_b\n"
    reported = cli("--root", str(filled.root), "delete", "tests/test_a", "--yes", "--json")
    assert json.loads(reported.stdout) == {"namespace": "tests/test_a", "deleted": ["shared-1"]}
    assert Store(filled.root).namespaces() == ["tests/test_b"]
    assert set(Store(filled.root).entries("tests/test_b")) == {"shared-2", "typed"}
    cli("--root", str(filled.root), "delete", "tests/test_b", "--yes")
    assert Store(filled.root).namespaces() == []


def test_root_is_accepted_after_the_subcommand_too(filled: Store) -> None:
    """Issue 14: `castore stats --root DIR` failed with "No such option '--root'"."""
    for arguments in (["stats"], ["ls"], ["verify"], ["gc", "--dry-run"], ["pack", "--json"]):
        after = cli(*arguments, "--root", str(filled.root))
        assert after.returncode in (0, 1), (arguments, after.stderr)
        assert "No such option" not in after.stderr
    assert str(filled.root) in cli("stats", "--root", str(filled.root)).stdout


def test_a_test_file_path_names_its_namespace_and_an_unknown_namespace_says_so(
    filled: Store,
) -> None:
    """Issue 14: show said "no key … in namespace …" for a namespace that does not exist."""
    by_path = cli("--root", str(filled.root), "show", "./tests/test_b.py", "typed")
    assert by_path.returncode == 0, by_path.stderr
    assert json.loads(by_path.stdout)["t"] == {"$tuple": [1, 2]}
    for command in (
        ["show", "tests/test_nope.py", "k"],
        ["ls", "tests/test_nope"],
        ["export", "tests/test_nope"],
        ["delete", "tests/test_nope", "--yes"],
    ):
        missing = cli("--root", str(filled.root), *command)
        assert missing.returncode == 1, command
        assert "no namespace 'tests/test_nope'" in missing.stderr, (command, missing.stderr)


def test_ls_shows_each_entry_s_metadata_so_hashed_keys_say_what_was_asked(
    tmp_path: Path,
) -> None:
    """Issue 14: `castore ls NS` showed only hashes for request_key keys."""
    store = Store(tmp_path / "store")
    store.put("tests/test_h", "gpt-4o-0123abcd", {"a": 1}, metadata={"prompt": "Translate x"})
    listed = cli("--root", str(store.root), "ls", "tests/test_h").stdout
    assert "gpt-4o-0123abcd" in listed and "prompt=Translate x" in listed


def test_every_command_that_reports_prints_the_same_facts_as_json(
    filled: Store, tmp_path: Path
) -> None:
    """Each report renders twice, as text and as --json: the JSON parses, and it holds
    the facts the text shows (the commands that change nothing; delete's is below)."""
    root = ["--root", str(filled.root)]
    exported = tmp_path / "export.json"
    assert cli(*root, "export", "tests/test_a", "-o", str(exported)).returncode == 0
    reports = {
        "stats": (["stats"], lambda data: f"entries        {data['entries']}"),
        "ls": (["ls"], lambda data: f"  {data['namespaces'][1]['namespace']}"),
        "ls NS": (["ls", "tests/test_b"], lambda data: sorted(data)[0]),
        "verify": (["verify"], lambda data: f"checked {data['blobs_checked']} of"),
        "gc": (["gc", "--dry-run"], lambda data: f"{len(data['blobs'])} unreferenced blob(s)"),
        "prune": (["prune", "--dry-run"], lambda data: f"drop {len(data['dropped'])} unused"),
        "import": (
            ["import", "--dry-run", str(exported)],
            lambda data: f"would import {data['entries']} entries",
        ),
    }
    for name, (arguments, fact) in reports.items():
        as_json = cli(*root, *arguments, "--json")
        assert as_json.returncode == 0, (name, as_json.stderr)
        data = json.loads(as_json.stdout)
        text = cli(*root, *arguments)
        assert text.returncode == 0, (name, text.stderr)
        assert fact(data) in text.stdout, (name, fact(data), text.stdout)


def test_the_version_comes_from_the_package_metadata_of_pyproject() -> None:
    """Issue 27, item 9: castore had no version. pyproject.toml is its one source."""
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert castore_package.__version__ == declared == metadata.version("castore")
    assert cli("--version").stdout == f"castore, version {declared}\n"


COMMANDS_LOADED = """
import sys
from castore.cli import main
main(sys.argv[1:], standalone_mode=False)
print(sorted(name for name in sys.modules if name.startswith("castore.cli.")))
"""


def test_each_command_module_is_imported_only_when_one_of_its_commands_runs() -> None:
    """`castore cat`, which git runs once per changed blob, imports ``browse`` and no other
    command module; the map of commands to modules is what the modules register."""
    run = subprocess.run(
        [sys.executable, "-c", COMMANDS_LOADED, "cat", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = run.stdout.splitlines()[-1]
    assert loaded == "['castore.cli.app', 'castore.cli.browse', 'castore.cli.reports']", loaded
    from castore.cli.app import COMMAND_MODULES, main  # noqa: PLC0415

    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"castore.cli.{module}")
    registered = {
        name: command.callback.__module__ if command.callback else ""
        for name, command in main.commands.items()
    }
    assert registered == {name: f"castore.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_root_after_the_subcommand_works_however_the_command_module_was_imported(
    filled: Store,
) -> None:
    """A command module imported directly (by a plugin, a script) before the group looks
    its command up still takes ``--root`` after the subcommand."""
    script = (
        "import sys\nimport castore.cli.browse\nfrom castore.cli import main\n"
        "main(['stats', '--root', sys.argv[1], '--json'])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(filled.root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["namespaces"] == len(filled.namespaces())
