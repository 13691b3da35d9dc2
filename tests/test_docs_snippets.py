"""Every code block in docs/ is checked, and this module says how (issue 27, item 6).

:data:`HOW` names each block of each page (by page and first line) and the way it is
checked: ``run`` (run here, in a real pytest session or a real git repository, or by the
test named), ``parse`` (JSON, ini and YAML parse; castore commands parse with the real
command), ``syntax`` (Python that compiles; the code it migrates from is not ours to
run) or ``output`` (example output: the test named produces it). A new block fails
:func:`test_every_block_of_every_page_says_how_it_is_checked` until it is listed.

Python blocks that use names a page assumes the reader has (their own dataclass, an SDK
client) run after :data:`PRELUDE`, which defines them: the reader's code, not castore's.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from conftest import (
    DOCS,
    Block,
    cli,
    commit_all,
    git,
    make_repo,
    markdown_blocks,
    needs_lfs,
)

from castore import Store
from castore._recording.json_paths import parse_pattern
from castore.cli import main

#: Pages whose snippets their owners' tests check.
ELSEWHERE = {"http.md", "remote.md", "architecture.md"}

#: (page, the block's first line, how it is checked). A line may stand for several blocks.
HOW: list[tuple[str, str, str]] = [
    ("api.md", "from castore import (", "output: signatures, held to the code by test_api_docs"),
    ("api.md", "from castore.integrations.http", "output: held to the code by test_api_docs"),
    ("benchmarks.md", "uv run --group bench", "parse: 10 min to an hour; test_bench runs it small"),
    ("cli.md", "castore [--root DIR]", "output: a synopsis; test_cli runs every command"),
    ("concepts.md", "<store>/castore.json", "output: the files test_store writes"),
    ("concepts.md", "{", "parse"),
    ("concepts.md", 'recorder_factory("ir_responses"', "run"),
    ("concepts.md", "from castore import redactor", "run"),
    ("concepts.md", "answer = recorder.get_or_record_sync(", "run"),
    ("concepts.md", "with recorder.get_or_record_sync(", "run"),
    ("diff.md", "castore diff  ", "output: a synopsis; test_diff runs every form"),
    ("diff.md", "[pytest]", "parse"),
    ("diff.md", "castore diff: HEAD~1", "output: test_diff's report of the same change"),
    ("diff.md", "test_llm: 1 changed", "output: test_quiet_rerecording's report of a prompt edit"),
    ("diff.md", "## castore diff:", "output: test_diff's Markdown report"),
    ("diff.md", "castore diff origin/main HEAD", "parse: a CI step on GitHub"),
    ("git.md", "uv run castore git setup", "run"),
    ("git.md", "--- a/tests/fixtures/castore/blobs", "output: test_git's readable diff"),
    ("git.md", "castore: conflict in", "output: test_git's merge conflict"),
    ("git.md", "LfsPointerError: blob", "output: test_git's unpulled clone"),
    ("git.md", "lfs-pointer  ", "output: test_lfs_packs's verify of a clone without LFS"),
    ("migrating.md", "@pytest.fixture\ndef modal_recorder():", "syntax: the seeds' code"),
    ("migrating.md", "@pytest.fixture\ndef modal_recorder(recorder_factory):", "run"),
    ("migrating.md", "@pytest.mark.integration", "run"),
    ("migrating.md", "# Before and after: record", "run"),
    ("migrating.md", "# Before and after\nasync def", "run"),
    ("migrating.md", "from castore import request_key", "run"),
    ("migrating.md", "# Before\n", "run: the After half (the Before half is the seeds')"),
    ("migrating.md", "uv run castore git setup", "run"),
    ("migrating.md", "# Before and after: CI replays", "parse"),
    ("migrating.md", "# Before and after\nRECORD_FIXTURES", "run"),
    ("migrating.md", "from tests.fixtures import", "syntax: the seeds' code"),
    ("migrating.md", "from castore import Recorder", "run"),
    ("migrating.md", "# Before and after\nstats", "run"),
    ("migrating.md", "modal_recorder.clear_cache()", "run"),
    ("migrating.md", "rm tests/fixtures/modal_responses.json", "run: the after line"),
    ("packs.md", "packed 1,537 blobs", "output: test_auto_pack's session report"),
    ("packs.md", "uv run castore pack", "run"),
    ("packs.md", "tests/fixtures/castore/", "output: the files test_packs writes"),
    ("pytest-plugin.md", "@pytest.fixture\ndef ir_recorder", "run"),
    ("pytest-plugin.md", "# conftest.py\n@pytest.fixture", "run"),
    ("pytest-plugin.md", "# conftest.py\ndef pytest_castore_configure", "run"),
    ("pytest-plugin.md", "@pytest.mark.castore(", "run"),
    ("pytest-plugin.md", "-------", "output: test_plugin's session report"),
    ("pytest-plugin.md", "fetched 3 objects", "output: test_lfs_packs's lazy fetch"),
    ("quickstart.md", "", "run: test_quickstart runs the page in a fresh project"),
    ("reliability.md", "CASTORE_CAMPAIGN=full", "parse: hours; the suite runs it at CI size"),
]


def pages() -> list[Path]:
    return sorted(path for path in DOCS.glob("*.md") if path.name not in ELSEWHERE)


def how(page: str, block: Block) -> list[str]:
    """The checks :data:`HOW` lists for ``block``: its first line (two for a block whose
    first line is a comment or a decorator) starts with the entry's."""
    head = "\n".join(line.strip() for line in block.body.strip().splitlines()[:2])
    return [check for name, start, check in HOW if name == page and head.startswith(start)]


def blocks(page: str) -> list[Block]:
    return markdown_blocks((DOCS / page).read_text(encoding="utf-8"))


def checked(kind: str) -> Iterator[tuple[str, Block]]:
    for path in pages():
        for block in blocks(path.name):
            if any(check.split(":")[0] == kind for check in how(path.name, block)):
                yield path.name, block


def the_block(page: str, start: str) -> Block:
    (found,) = [block for block in blocks(page) if how(page, block) and _starts(block, start)]
    return found


def _starts(block: Block, start: str) -> bool:
    head = "\n".join(line.strip() for line in block.body.strip().splitlines()[:2])
    return head.startswith(start)


def test_every_block_of_every_page_says_how_it_is_checked() -> None:
    unlisted = [
        f"{path.name}: {block.first_line!r}"
        for path in pages()
        for block in blocks(path.name)
        if len(how(path.name, block)) != 1
    ]
    assert not unlisted, "list these blocks in HOW, once each:\n" + "\n".join(unlisted)
    used = {
        (name, start)
        for path in pages()
        for block in blocks(path.name)
        for name, start, _ in HOW
        if name == path.name and _starts(block, start)
    }
    stale = [(name, start) for name, start, _ in HOW if (name, start) not in used]
    assert not stale, f"HOW names blocks the pages no longer have: {stale}"


def test_python_blocks_compile() -> None:
    compiled = 0
    for kind in ("run", "syntax"):
        for page, block in checked(kind):
            if block.lang == "python":
                compile(
                    block.body,
                    f"{page}: {block.first_line}",
                    "exec",
                    ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                )
                compiled += 1
    assert compiled >= 15


def test_json_ini_and_yaml_blocks_parse_and_diff_patterns_are_valid() -> None:
    parsed = 0
    for page, block in checked("parse"):
        if block.lang == "json":
            json.loads(block.body)
        elif block.lang == "ini":
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(block.body)
            for pattern in parser["pytest"].get("castore_diff_ignore", "").split():
                parse_pattern(pattern)
        elif block.lang == "yaml":
            yaml.safe_load(block.body)
        elif block.lang == "bash":
            continue
        else:
            pytest.fail(f"{page}: nothing parses a {block.lang!r} block")
        parsed += 1
    assert parsed == 4


# --- the pages' Python, run in real pytest sessions ---------------------------------------

PRELUDE = """
import asyncio
import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from castore import Recorder, redactor


# --- what the pages assume the reader's project has ---
@dataclasses.dataclass
class Signature:
    name: str


@dataclasses.dataclass
class IntermediateRepresentation:
    signature: Signature

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(Signature(**data["signature"]))


@dataclasses.dataclass
class Message:
    role: str
    content: str


class Custom:
    def __init__(self, text):
        self.text = text

    def to_dict(self):
        return {"text": self.text}

    @classmethod
    def from_dict(cls, data):
        return cls(data["text"])


CustomObject = Custom


async def generate_custom_object():
    return Custom("made by an expensive call")


class Completions:
    calls = 0

    def create(self, *args, stream=False, **kwargs):
        Completions.calls += 1
        if os.environ.get("NO_API"):
            raise AssertionError("the API was called during replay")
        if stream:
            return iter([{"choices": [{"delta": {"content": w}}]} for w in ("Once", " upon")])
        return {"choices": [{"message": {"content": "def find_index(xs, x): ..."}}]}


client = SimpleNamespace(chat=SimpleNamespace(completions=Completions()))
args = {"model": "gpt-4o", "messages": [{"role": "user", "content": "find_index"}]}
MODEL, API_KEY = "gpt-4o", "sk-not-a-real-key"
messages = args["messages"]
ENDPOINT = "https://modal.invalid/translate"


async def make_async_stream():
    for word in ("Once", " upon"):
        yield {"choices": [{"delta": {"content": word}}]}


class ModalProvider:
    def __init__(self, endpoint_url):
        self.endpoint_url = endpoint_url


class XGrammarIRTranslator:
    def __init__(self, provider):
        self.provider = provider

    async def translate(self, prompt):
        client.chat.completions.create(prompt=prompt)
        return IntermediateRepresentation(Signature("find_index"))


async def some_async_api_call():
    client.chat.completions.create()
    return {"status": "success"}
# --- end of the reader's project ---
"""


def as_test(name: str, body: str, *, fixtures: str, prefix: str = "") -> str:
    """A block that runs inside a test, as a test function of its own."""
    asynchronous = "await " in body or "async " in body
    inner = textwrap.indent(prefix + body, "    ")
    return f"\n\n{'async ' if asynchronous else ''}def {name}({fixtures}):\n{inner}\n"


def session(pytester: pytest.Pytester, conftest: str, tests: str, *, passed: int) -> None:
    """Record (the fake API is called), then replay with the API gone: all pass."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "markers =\n    integration: calls a real API\n"
    )
    pytester.makeconftest(PRELUDE + conftest)
    pytester.makepyfile(test_page="from conftest import *\n" + tests)
    recorded = pytester.runpytest("--castore-mode=new_episodes", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=passed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_API", "1")
        replayed = pytester.runpytest("-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=passed)


@pytest.fixture
def page_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("CI", "RECORD_FIXTURES", "CASTORE_ROOT", "NO_API"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def test_the_pytest_plugin_page_runs(page_session: pytest.Pytester) -> None:
    page = "pytest-plugin.md"
    conftest = (
        "\n\n".join(
            the_block(page, start).body
            for start in ("@pytest.fixture\ndef ir_recorder", "# conftest.py\n@pytest.fixture")
        )
        + "\n\n"
        + the_block(page, "# conftest.py\ndef pytest_castore_configure").body
    )
    tests = (
        "import pytest\n\n"
        + the_block(page, "@pytest.mark.castore(").body
        + as_test(
            "test_the_shared_recorder",
            "ir = ir_recorder.get_or_record_sync('k', lambda: IntermediateRepresentation("
            "Signature(client.chat.completions.create() and 'find_index')))\n"
            "assert ir == IntermediateRepresentation(Signature('find_index'))\n"
            "assert request.config.castore_store_root.name == 'castore'\n",
            fixtures="ir_recorder, request",
        )
    )
    session(page_session, conftest, tests, passed=2)


def test_the_concepts_page_runs(page_session: pytest.Pytester) -> None:
    page = "concepts.md"
    conftest = the_block(page, "from castore import redactor").body
    tests = (
        as_test(
            "test_typed_recorders",
            the_block(page, 'recorder_factory("ir_responses"').body,
            fixtures="recorder_factory",
        )
        + as_test(
            "test_request_fingerprint",
            the_block(page, "answer = recorder.get_or_record_sync(").body
            + "assert answer['choices'][0]['message']['content']\n",
            fixtures="recorder",
        )
        + as_test(
            "test_streams",
            the_block(page, "with recorder.get_or_record_sync(").body,
            fixtures="recorder",
        )
        + as_test(
            "test_redacted",
            "value = llm_recorder.get_or_record_sync('k', lambda: {'api_key': 'x', 'n': 1})\n"
            "stored = castore_store.get('llm', 'k')\n"
            "assert stored == {'api_key': '[REDACTED]', 'n': 1}\n",
            fixtures="llm_recorder, castore_store",
        )
    )
    session(page_session, conftest, tests, passed=4)


def _function_definitions(source: str) -> str:
    """The ``def`` statements of a block: the seeds' example defines the serializers the
    castore version reuses, beside an import of the seeds' own recorder."""
    tree = ast.parse(source, feature_version=(3, 11))
    return "\n\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.FunctionDef))


def test_the_migration_page_runs(page_session: pytest.Pytester) -> None:
    page = "migrating.md"
    conftest = (
        the_block(page, "@pytest.fixture\ndef modal_recorder(recorder_factory):").body
        + "\n\n"
        + _function_definitions(the_block(page, "from tests.fixtures import").body)
    )
    recorded_first = (  # the page's recorder replays only: record the key first
        "import castore\n"
        "await castore.Recorder('tests/fixtures/castore', 'custom_responses', "
        "mode='new_episodes', serializer=serialize_custom, deserializer=deserialize_custom"
        ").get_or_record('custom_test', generate_custom_object)\n"
    )
    tests = (
        the_block(page, "@pytest.mark.integration").body
        + "\n\n"
        + the_block(page, "# Before and after\nasync def").body
        + as_test(
            "test_request_key",
            the_block(page, "from castore import request_key").body
            + "assert key.startswith('gpt-4o-') and API_KEY not in key\n",
            fixtures="",
        )
        + as_test(
            "test_custom_serializers",
            the_block(page, "from castore import Recorder").body
            + "assert response.text == 'made by an expensive call'\n",
            fixtures="",
            prefix=recorded_first,
        )
        + as_test(
            "test_stats",
            the_block(page, "# Before and after\nstats").body,
            fixtures="modal_recorder",
            prefix="modal_recorder.get_or_record_sync('stats', lambda: some_value)\n",
        )
        + as_test(
            "test_clear_cache_and_delete",
            the_block(page, "modal_recorder.clear_cache()").body
            + "assert not castore_store.contains('modal_responses', 'key')\n",
            fixtures="modal_recorder, castore_store",
            prefix="castore_store.put('modal_responses', 'key', some_value)\n",
        )
    )
    session(page_session, conftest + "\n\nsome_value = {'status': 'success'}\n", tests, passed=6)


# --- the pages' shell lines, run in a real git repository -----------------------------------


def shell_lines(block: Block, *, only: str | None = None) -> list[list[str]]:
    """The commands of a bash block as words, comments dropped, ``a && b`` as two.
    ``only`` keeps the part of the block under its ``# After`` comment
    (``"after-section"``), or the lines whose comment says ``after`` (``"after-comment"``)."""
    body = block.body
    if only == "after-section":
        body = body.split("# After", 1)[1]
    commands = []
    for raw in body.splitlines():
        if only == "after-comment" and not re.search(r"#\s*after\b", raw):
            continue
        words = shlex.split(raw, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return commands


def run_line(words: list[str], repo: Path, pytester: pytest.Pytester) -> None:
    """A page's command, as a user at a terminal runs it in ``repo``. ``uv run castore``
    is the command in this process; ``castore prune`` asks at a terminal, so it gets
    ``--yes`` here; ``uv run pytest`` is this environment's pytest, a real session in
    this process (pytester's)."""
    words = list(words)
    environment = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        environment[name] = value
    if words[:3] == ["uv", "run", "castore"]:
        arguments = words[3:]
        if arguments[0] in ("prune", "delete") and "--dry-run" not in arguments:
            arguments.append("--yes")
        cli(*arguments, cwd=repo, check=True)
    elif words[:3] == ["uv", "run", "pytest"]:
        run_pytest_here(pytester, repo, words[3:], environment)
    elif words[0] == "git":
        git(repo, *words[1:])
    else:
        pytest.fail(f"{shlex.join(words)!r}: no way to run this line yet")


def run_pytest_here(
    pytester: pytest.Pytester, repo: Path, arguments: list[str], environment: dict[str, str]
) -> None:
    """``pytest ARGUMENTS`` in ``repo`` with ``environment`` set: a whole session (its
    rootdir, ini file, options and store are the repository's), in this process, where a
    fresh interpreter would spend a second starting for the same run."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.setenv("CASTORE_LIVE", "1" if environment.get("RECORD_FIXTURES") else "0")
        patch.chdir(repo)
        outcome = pytester.runpytest_inprocess("-p", "no:cacheprovider", *arguments)
    assert outcome.ret == 0, outcome.stdout.str() + outcome.stderr.str()


SUITE = """
import os

def call(prompt):
    if os.environ.get("CASTORE_LIVE") != "1":
        raise AssertionError("the real API was called during replay")
    return {{"answer": f"answer to {{prompt}}"}}

def test_{name}(recorder):
    assert recorder.get_or_record_sync("{name}", lambda: call("{name}"))
"""


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path: Path, isolated_git: None) -> Path:
    """A git repository with a few test modules of the kind the pages name, in the
    default store place (tests/fixtures/castore). pytester comes first: it sets HOME to
    a folder of its own, which the tests' git HOME (``isolated_git``) then replaces."""
    repo = make_repo(tmp_path / "project")
    # pytest-asyncio (installed here) warns at every session start without this line;
    # the sessions run in this process, so the warnings would join this run's summary.
    (repo / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (repo / ".gitignore").write_text("__pycache__/\n")  # as in any Python project
    (repo / "tests" / "integration").mkdir(parents=True)
    for name in ("your_test", "new_feature", "specific"):
        (repo / "tests" / "integration" / f"test_{name}.py").write_text(SUITE.format(name=name))
    commit_all(repo, "a project")
    return repo


@needs_lfs
def test_the_migration_page_s_commands_run(project: Path, pytester: pytest.Pytester) -> None:
    page = "migrating.md"
    for start, only in (
        ("# Before and after: record", None),
        ("# Before\n", "after-section"),
        ("uv run castore git setup", None),
        ("# Before and after\nRECORD_FIXTURES", None),
        ("rm tests/fixtures/modal_responses.json", "after-comment"),
    ):
        for line in shell_lines(the_block(page, start), only=only):
            run_line(line, project, pytester)
    store = Store(project / "tests" / "fixtures" / "castore")
    assert store.namespaces() == [
        "tests/integration/test_new_feature",
        "tests/integration/test_specific",
        "tests/integration/test_your_test",
    ]
    assert len(git(project, "lfs", "ls-files", "--name-only").stdout.split()) == 3
    assert git(project, "status", "--porcelain").stdout == ""


@needs_lfs
def test_the_git_and_packs_pages_commands_run(project: Path, pytester: pytest.Pytester) -> None:
    run_pytest_here(pytester, project, [], {"RECORD_FIXTURES": "true"})
    for page, start in (
        ("git.md", "uv run castore git setup"),
        ("packs.md", "uv run castore pack"),
    ):
        for line in shell_lines(the_block(page, start)):
            run_line(line, project, pytester)
    assert git(project, "status", "--porcelain").stdout == ""
    tracked = git(project, "lfs", "ls-files", "--name-only").stdout.split()
    assert any(name.endswith(".pack") for name in tracked)
    run_pytest_here(pytester, project, [], {})  # replays from the packed, committed store


def castore_parses(arguments: list[str]) -> None:
    """Parse ``castore ARGUMENTS`` as the real command would, running nothing: a
    UsageError for an option or command that does not exist."""
    context = main.make_context("castore", list(arguments))
    command: click.Command = main
    rest = [*context._protected_args, *context.args]
    while isinstance(command, click.Group):
        name, found, rest = command.resolve_command(context, rest)
        assert found is not None and name is not None
        command = found
        context = command.make_context(name, rest, parent=context)
        rest = [*context._protected_args, *context.args]


def test_every_castore_command_line_of_the_pages_parses() -> None:
    lines = [
        words[: words.index(">")] if ">" in words else words
        for kind in ("run", "parse")
        for _, block in checked(kind)
        if block.lang == "bash"
        for words in shell_lines(block)
    ]
    commands = [words[words.index("castore") + 1 :] for words in lines if "castore" in words[:3]]
    assert len(commands) >= 8
    for arguments in commands:
        castore_parses(arguments)
    with pytest.raises(click.UsageError, match="No such option"):
        castore_parses(["diff", "--no-such-option"])


def test_the_benchmark_and_campaign_commands_parse() -> None:
    """Not run (minutes to hours): their options and files exist."""
    from bench.__main__ import arguments  # noqa: PLC0415 - the benchmark, only here

    for words in shell_lines(the_block("benchmarks.md", "uv run --group bench")):
        if "-m" in words:
            arguments().parse_args(words[words.index("-m") + 2 :])
        else:
            assert (DOCS.parent / words[-1]).is_file(), words
    (campaign,) = shell_lines(the_block("reliability.md", "CASTORE_CAMPAIGN=full"))
    assert campaign[:5] == ["CASTORE_CAMPAIGN=full", "uv", "run", "pytest", "-s"]
    for path in campaign[5:]:
        assert (DOCS.parent / path).is_file(), path
