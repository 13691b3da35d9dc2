"""castore's pytest plugin, registered through the ``pytest11`` entry point.

Installing castore is enough: tests get a ``recorder`` fixture (namespace = the test
module's path), a ``recorder_factory`` for recorders of their own, and a report at the
end of the session. This module holds only options, fixtures and hook wiring; the
session's work lives in ``castore._session`` and ``castore._report``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pytest

from castore._modes import Mode
from castore._recorder import Recorder
from castore._report import report_lines
from castore._session import DEFAULT_ROOT, CastoreSession
from castore._store import Store

SESSION_KEY: Final = pytest.StashKey[CastoreSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("castore", "castore: record and replay expensive calls")
    modes = ", ".join(mode.value for mode in Mode)
    group.addoption(
        "--castore-mode",
        dest="castore_mode",
        default=None,
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "castore(mode=None, namespace=None, schema_version=None, max_age=None, "
        "on_expired=None): castore recorder options for this test",
    )
    session = CastoreSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "castore-session")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.is_worker:
        return
    lines = report_lines(session)
    if lines:
        terminalreporter.write_sep("-", "castore")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def castore_store(pytestconfig: pytest.Config) -> Store:
    """The session's store (``castore_root``), shared by every recorder of the session."""
    return pytestconfig.stash[SESSION_KEY].store


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Recorder:
    """A recorder whose namespace is this test module's path (``tests/test_translate``)."""
    return request.config.stash[SESSION_KEY].recorder(request)


@pytest.fixture
def recorder_factory(request: pytest.FixtureRequest) -> Callable[..., Recorder]:
    """Make recorders with their own namespace, type, codec, schema or redaction::

    @pytest.fixture
    def ir_recorder(recorder_factory):
        return recorder_factory("ir_responses", type=IntermediateRepresentation)
    """
    session = request.config.stash[SESSION_KEY]

    def make(namespace: str | None = None, **options: Any) -> Recorder:
        return session.recorder(request, namespace, **options)

    return make
