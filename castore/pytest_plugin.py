"""castore's pytest plugin, registered through the ``pytest11`` entry point.

Installing castore is enough: tests get a ``recorder`` fixture (namespace = the test
module's path), a ``recorder_factory`` for recorders of their own, and a report at the
end of the session. Suites set recorder defaults by overriding the ``castore_config``
fixture, and set the store up in a ``pytest_castore_configure`` hook. This module holds
only options, fixtures and hook wiring; the session's work lives in ``castore._pytest``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import Token
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import pytest

from castore._pytest.plain_imports import without_assertion_rewriting

with without_assertion_rewriting():  # castore/_pytest/plain_imports.py says why
    from castore._pytest import hookspecs
    from castore._pytest.guard_plugin import GuardPlugin, allowed_hosts
    from castore._pytest.marker_fixtures import (
        closest_marker,
        marks_named,
        request_fixture_for_marker,
    )
    from castore._pytest.report import report_lines
    from castore._pytest.session import CastoreSession
    from castore._pytest.settings import truthy
    from castore._pytest.storage_settings import add_ini_options as add_storage_ini_options
    from castore._pytest.validation import ini_problem, marker_problems, mode_option
    from castore._recording.ambient import Ambient, lend, take_back
    from castore._recording.modes import Mode
    from castore._recording.recorder import Recorder
    from castore._storage.layout import DEFAULT_ROOT
    from castore._storage.store import Store

if TYPE_CHECKING:
    from castore.integrations.http import HttpRecorder

SESSION_KEY: Final = pytest.StashKey[CastoreSession]()
#: The token that gives back what was lent to hand-made recorders before this session.
LENT_KEY: Final = pytest.StashKey[Token[Ambient | None]]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("castore", "castore: record and replay expensive calls")
    modes = ", ".join(mode.value for mode in Mode)
    group.addoption(
        "--castore-mode",
        dest="castore_mode",
        default=None,
        type=mode_option,
        help=f"recording mode for this run: {modes} (default: ini castore_mode, else none; "
        f"RECORD_FIXTURES=true means all)",
    )
    group.addoption(
        "--castore-root",
        dest="castore_root",
        default=None,
        help=f"store directory (default: ini castore_root, else <rootdir>/{DEFAULT_ROOT})",
    )
    parser.addini(
        "castore_root", f"castore store directory, relative to the ini file ({DEFAULT_ROOT})"
    )
    parser.addini("castore_mode", f"default castore recording mode ({modes}); default none")
    parser.addini(
        "castore_lfs_fetch",
        "download from git-lfs, before the tests run, the packs and blobs the collected "
        "tests need that the clone lacks (default true)",
        type="bool",
        default=True,
    )
    parser.addini(
        "castore_vcr",
        "keep VCR.py cassettes' response bodies in the castore store (pytest-recording)",
        type="bool",
        default=False,
    )
    parser.addini(
        "castore_network_guard",
        "while a session replays, refuse connections to hosts not in castore_allow_hosts, "
        "at the socket (default true)",
        type="bool",
        default=True,
    )
    parser.addini(
        "castore_allow_hosts",
        "hosts a replaying test may connect to: names, *.suffix, addresses, networks, "
        "optionally :port (default: this machine's loopback names and addresses)",
        type="linelist",
    )
    parser.addini(
        "castore_ignore_hosts",
        "hosts whose HTTP requests castore_http neither records nor replays (they go out "
        "as without castore, and meet the network guard)",
        type="linelist",
    )
    parser.addini(
        "castore_volatile",
        "JSON paths of answer parts that change on every call, beyond castore's defaults "
        "(e.g. headers.x-trace-id, $..trace_id): an answer that differs only there is kept "
        "as recorded when re-recorded",
        type="linelist",
    )
    parser.addini(
        "castore_diff_ignore",
        "JSON paths `castore diff` ignores, one a line (e.g. $..id, $..created)",
        type="linelist",
    )
    add_storage_ini_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    where = str(config.inipath) if config.inipath else "the pytest configuration"
    problem = ini_problem(config.getini("castore_mode"), where)
    if problem:
        raise pytest.UsageError(problem)
    config.addinivalue_line(
        "markers",
        "castore_http(match_on=None, match_headers=(), drop_headers=None, drop_query=None, "
        "key=None, pace=None, redact_body=None, ignore_hosts=()): answer this test's HTTP "
        "requests (httpx, httpx2, aiohttp, requests, urllib3, botocore) from the store",
    )
    config.addinivalue_line(
        "markers",
        "castore(mode=None, namespace=None, schema_version=None, max_age=None, "
        "on_expired=None, allow_hosts=(), allow_misses=False): castore options for this "
        "test: its recorders', the hosts the network guard lets it reach, and whether it "
        "expects misses",
    )
    session = CastoreSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "castore-session")
    if config.getini("castore_vcr"):
        with without_assertion_rewriting():
            from castore._pytest.vcr_usage import CassetteUsage  # noqa: PLC0415 - VCR.py users

        config.pluginmanager.register(CassetteUsage(session.usage), "castore-vcr-usage")
    if config.getini("castore_network_guard"):
        guard = GuardPlugin(session, allowed_hosts(config.getini("castore_allow_hosts")))
        config.pluginmanager.register(guard, "castore-network-guard")
        guard.install()
    # Recorders a test makes by hand (Recorder("tests/fixtures/castore", ...)) resolve
    # against the rootdir and, on the session's store, follow its mode and report to it.
    ambient = Ambient(
        rootdir=config.rootpath,
        store_root=session.root,
        listener=session.listener,
        mode=lambda: session.mode_for(None),
    )
    config.stash[LENT_KEY] = lend(ambient)


def pytest_unconfigure(config: pytest.Config) -> None:
    token = config.stash.get(LENT_KEY, None)
    if token is not None:
        take_back(token)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.is_worker:
        return
    try:
        store = session.root.relative_to(config.rootpath)
    except ValueError:
        store = session.root
    lines = report_lines(
        session.usage,
        session.judged,
        store=store,
        mode=session.mode_for(None),
        ci_overrides_ini=truthy(os.environ.get("CI"))
        and (bool(config.getini("castore_mode")) or session.usage.ci_ignored > 0),
        verbose=config.get_verbosity() > 0,
    )
    if session.not_saved:
        lines.append(f"could not save the unused-recording verdicts: {session.not_saved}")
    lines += session.upkeep_lines()
    if lines:
        terminalreporter.write_sep("-", "castore")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def castore_store(pytestconfig: pytest.Config) -> Store:
    """The session's store (``castore_root``), shared by every recorder of the session."""
    return pytestconfig.stash[SESSION_KEY].store


@pytest.fixture(scope="session")
def castore_config() -> Mapping[str, Any]:
    """Defaults for every recorder the fixtures make in this scope; override it in a
    conftest.py, a module or a class, as pytest-recording's ``vcr_config``::

    @pytest.fixture
    def castore_config():
        return {"schema_version": 2, "max_age": "30d", "redact": scrub}

    The ``castore`` marker's options, then a factory call's own, take precedence. The
    default is session-scoped (an override may have any scope): a function-scoped one
    would cost every test a fixture set-up for an empty dict.
    """
    return MappingProxyType({})


@pytest.fixture
def recorder(request: pytest.FixtureRequest, castore_config: Mapping[str, Any]) -> Recorder:
    """A recorder whose namespace is this test module's path (``tests/test_translate``)."""
    return request.config.stash[SESSION_KEY].recorder(request, defaults=castore_config)


@pytest.fixture
def recorder_factory(
    request: pytest.FixtureRequest, castore_config: Mapping[str, Any]
) -> Callable[..., Recorder]:
    """Make recorders with their own namespace, type, codec, schema or redaction::

    @pytest.fixture
    def ir_recorder(recorder_factory):
        return recorder_factory("ir_responses", type=IntermediateRepresentation)
    """
    session = request.config.stash[SESSION_KEY]

    def make(namespace: str | None = None, **options: Any) -> Recorder:
        return session.recorder(request, namespace, defaults=castore_config, **options)

    return make


@pytest.fixture(scope="module")
def module_recorder_factory(request: pytest.FixtureRequest) -> Callable[..., Recorder]:
    """``recorder_factory`` for module-scoped fixtures (a client built once per module)::

    @pytest.fixture(scope="module")
    def llm(module_recorder_factory):
        return module_recorder_factory(type=ChatCompletion)

    The namespace defaults to the module's; the module's ``castore`` marker
    (``pytestmark``) applies. ``castore_config`` may be overridden per test, so it does
    not: pass options here.
    """
    session = request.config.stash[SESSION_KEY]

    def make(namespace: str | None = None, **options: Any) -> Recorder:
        return session.recorder(request, namespace, **options)

    return make


@pytest.fixture(scope="session")
def session_recorder_factory(request: pytest.FixtureRequest) -> Callable[..., Recorder]:
    """``recorder_factory`` for session-scoped fixtures; a namespace must be given, since
    a session has no test module to name one after."""
    session = request.config.stash[SESSION_KEY]

    def make(namespace: str | None = None, **options: Any) -> Recorder:
        return session.recorder(request, namespace, **options)

    return make


@pytest.fixture
def castore_http(recorder: Recorder, request: pytest.FixtureRequest) -> Iterator[HttpRecorder]:
    """Answer every HTTP request of this test from the store (recording in a recording
    mode), in the test module's namespace: httpx, httpx2, aiohttp, requests, urllib3,
    botocore (boto3) and grpcio's unary and server-streaming calls. The ``castore_http``
    marker's options apply: ``match_on``, ``match_headers``, ``drop_headers``,
    ``drop_query``, ``key``, ``pace``, ``redact_body`` and ``ignore_hosts`` (added to the
    ini's ``castore_ignore_hosts``).
    The marker alone, on a test, a class or a module (``pytestmark``), turns it on."""
    marker = closest_marker(request.node, "castore_http")
    options = {k: v for k, v in (marker.kwargs if marker else {}).items() if v is not None}
    ignored = [
        word for line in request.config.getini("castore_ignore_hosts") for word in line.split()
    ]
    options["ignore_hosts"] = [*ignored, *options.get("ignore_hosts", ())]
    # Imported here: a session that records nothing at the HTTP level (most) does not
    # pay for importing the interception and its stream classes.
    from castore.integrations.http import HttpRecorder  # noqa: PLC0415

    http = HttpRecorder(recorder, test=request.node.nodeid, **options)
    try:
        with http.active():
            yield http
    finally:
        request.config.stash[SESSION_KEY].usage.error_answers.extend(http.error_answers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers with a bad keyword stop the run before any test does; the ``castore_http``
    marker turns the ``castore_http`` fixture on."""
    problems = marker_problems(
        (item.nodeid, mark.name, mark.kwargs)
        for item in items
        for mark in marks_named(item, ("castore", "castore_http"))
    )
    if problems:
        unique = list(dict.fromkeys(problems))
        raise pytest.UsageError("castore: bad marker options:\n  " + "\n  ".join(unique))
    request_fixture_for_marker(items, "castore_http", "castore_http")


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording's hook: with ``castore_vcr = true``, cassettes keep their response
    bodies in the session's store, and castore's rules hold (``castore.integrations.vcr``):
    its mode is VCR.py's record mode unless ``--record-mode`` is given, and the secrets
    ``castore_http`` keeps out of the store stay out of cassettes. No conftest change."""
    if not config.getini("castore_vcr"):
        return
    # Imported here: only sessions that use VCR.py pay for it.
    from castore.integrations.vcr import apply_castore_rules, use_castore  # noqa: PLC0415

    session = config.stash[SESSION_KEY]
    use_castore(vcr, session.store, config.rootpath)
    explicit = config.getoption("--record-mode", None) is not None
    apply_castore_rules(vcr, None if explicit else session.mode_for(None).value)
