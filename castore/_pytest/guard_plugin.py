"""The network guard's pytest side: which policy holds for each test, and what it saw.

Registered by the plugin only when ``castore_network_guard`` is on (the default). The
session around the tests (collection included) follows the session's mode; each test
follows its own (a ``castore(mode=...)`` marker may make one test record while the rest
replay), and may allow more hosts with ``castore(allow_hosts=[...])``. The policy is
worked out when something connects, not as each test starts.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pytest

from castore._pytest.marker_fixtures import closest_marker
from castore._pytest.network_guard import NetworkGuard, Policy
from castore._pytest.plain_imports import without_assertion_rewriting
from castore._recording.hosts import LOOPBACK, HostList
from castore._recording.modes import Mode

if TYPE_CHECKING:
    from castore._pytest.session import CastoreSession


def allowed_hosts(ini: Iterable[str]) -> HostList:
    """``castore_allow_hosts`` (one or more per line), or this machine's loopback names."""
    patterns = [word for line in ini for word in line.replace(",", " ").split()]
    return HostList(patterns or LOOPBACK)


class GuardPlugin:
    """Which policy holds, asked by the guard only when something connects or looks a name
    up: a replaying test seldom does, so the tests pay no hook of the guard's own. The
    session says which test runs (``CastoreSession.current_item``)."""

    def __init__(self, session: CastoreSession, allowed: HostList) -> None:
        self.session = session
        self.allowed = allowed
        self.guard = NetworkGuard(self.policy_now, session.usage)
        self._grpc_undo: Callable[[], None] | None = None
        #: Outside tests: the session's policy, named for its phase.
        self._outside = self._session_policy("the session")
        #: The node id of the collector being collected, while collection runs.
        self._collecting: str | None = None
        session.before_each_test.append(self._guard_grpc)

    def install(self) -> None:
        self.guard.install()
        self._guard_grpc()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._grpc_undo is not None:
            self._grpc_undo()
        self.guard.uninstall()

    def _guard_grpc(self) -> None:
        """grpcio connects below ``socket``: guard its calls once something imported it
        (checked before each test's fixtures, so castore_http's adapter, installed by a
        fixture, sits above the guard and answers first)."""
        if self._grpc_undo is None and "grpc" in sys.modules:
            with without_assertion_rewriting():
                from castore._pytest import grpc_guard  # noqa: PLC0415 - a session with grpc

            self._grpc_undo = grpc_guard.install(self.guard.check_connect)

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        self._collecting = collector.nodeid  # named in a refusal's message only

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collecting = None
        self._outside = self._between_tests
        self._guard_grpc()

    def policy_now(self) -> Policy:
        """The running test's policy (its ``castore`` marker's mode and hosts), else the
        session's, named for where the session is."""
        item = self.session.current_item
        if item is None:
            if self._collecting is not None:
                return self._outside._replace(where=f"collecting {self._collecting or 'tests'}")
            return self._outside
        return self._policy_for(item)  # its marker as of this connection: a few µs

    def _policy_for(self, item: pytest.Item) -> Policy:
        marker = closest_marker(item, "castore")
        nodeid = item.nodeid
        if marker is None:  # the session's mode and hosts: most tests
            blocking, allowed = self._between_tests.blocking, self.allowed
        else:
            options = marker.kwargs
            blocking = self.session.mode_for(options.get("mode")) is Mode.NONE
            hosts = options.get("allow_hosts")
            allowed = self.allowed + HostList(hosts) if hosts else self.allowed
        return Policy(
            f"test {nodeid}", blocking, allowed, lambda target: self._advice(target, nodeid)
        )

    @functools.cached_property
    def _between_tests(self) -> Policy:
        """One policy for every gap between tests: a session runs thousands of tests."""
        return self._session_policy("between tests")

    def _session_policy(self, where: str) -> Policy:
        return Policy(
            where=where,
            blocking=self.session.mode_for(None) is Mode.NONE,
            allowed=self.allowed,
            advice=lambda target: self._advice(target, None),
        )

    def _advice(self, target: str, nodeid: str | None) -> str:
        host = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
        lines = []
        if nodeid:
            runner = "uv run pytest" if "UV_RUN_RECURSION_DEPTH" in os.environ else "pytest"
            lines += [
                "  to record this call, have castore record it (the castore_http marker, or "
                "get_or_record) and run:",
                f"    RECORD_FIXTURES=true {runner} {shlex.quote(nodeid)}",
                f'  to let this test reach the host: @pytest.mark.castore(allow_hosts=["{host}"])',
            ]
        else:
            lines.append(
                "  this happened outside any test (at collection: an import that fetches?)"
            )
        lines += [
            f"  to let every replaying test reach it: castore_allow_hosts = {host} (pytest "
            "configuration; the default allows only this machine)",
            "  to turn the guard off: castore_network_guard = false",
        ]
        return "\n".join(lines)
