"""The network guard: in a replaying session, a connection to a host that is not allowed
fails at once with castore's error, whatever makes it; in a recording session, the report
lists the hosts called outside castore.

Nothing here leaves the machine. To watch the guard refuse, the inner sessions set
``castore_allow_hosts`` to a network that does not hold the loopback address their tests
connect to, and a listener on loopback counts the connections that got through.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

# The inner sessions run in this process: httpx (and httpcore beneath it) must be imported
# before them, or an inner session's fresh httpcore raises errors the outer httpx does not
# map (pytester forgets the modules a run imported).
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest

GUARDED = """
import os
import socket
import urllib.request

import httpx
import pytest

PORT = int(os.environ["GUARD_PORT"])


def test_by_name():
    socket.create_connection(("localhost", PORT), timeout=2).close()


def test_by_address():
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()


def test_through_the_socket_module():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect(("127.0.0.1", PORT))


def test_a_lookup_is_refused_before_any_query():
    socket.getaddrinfo("no-such-host.invalid", 443)


def test_clients_report_it_as_their_connection_error():
    with pytest.raises(httpx.ConnectError) as raised:
        httpx.get(f"http://127.0.0.1:{PORT}/", timeout=2)
    assert "castore's network guard refused" in str(raised.value)
    with pytest.raises(OSError, match="network guard refused"):
        urllib.request.urlopen(f"http://localhost:{PORT}/", timeout=2)


@pytest.mark.castore(allow_hosts=["127.0.0.1"])
def test_the_marker_allows_a_host_for_one_test():
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
"""


INI = ("[pytest]", "asyncio_default_fixture_loop_scope = function")


class Listener:
    """A TCP listener on loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def count(self, expected: int) -> int:
        """The connections accepted, once ``expected`` have been or a few seconds passed
        (the listener's thread counts them after the clients are done)."""
        deadline = time.monotonic() + 5
        while self.accepted < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.accepted

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    running = Listener()
    monkeypatch.setenv("GUARD_PORT", str(running.port))
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    yield running
    running.close()


def guarded_project(pytester: pytest.Pytester, *ini: str) -> None:
    pytester.makepyfile(test_guard=GUARDED)
    pytester.makeini("\n".join([*INI, "castore_root = recordings", *ini]))


def test_a_replaying_session_refuses_every_way_out(
    pytester: pytest.Pytester, listener: Listener
) -> None:
    guarded_project(pytester, "castore_allow_hosts = 10.0.0.0/8")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=4)
    assert listener.count(1) == 1  # the marked test's; none of the refused ones
    port = listener.port
    result.stdout.fnmatch_lines(
        [
            f"*NetworkGuardError: castore's network guard refused a connection to "
            f"localhost:{port} (test test_guard.py::test_by_name)*",
            "*RECORD_FIXTURES=true *pytest test_guard.py::test_by_name",
            '*@pytest.mark.castore(allow_hosts=[[]"localhost"[]])',
            "*castore_allow_hosts = localhost*",
            "*castore_network_guard = false*",
        ]
    )
    for test in ("test_by_address", "test_through_the_socket_module"):
        result.stdout.fnmatch_lines(
            [f"*refused a connection to 127.0.0.1:{port} (test test_guard.py::{test})*"]
        )
    result.stdout.fnmatch_lines(
        ["*refused a connection to no-such-host.invalid:443 (test*lookup_is_refused*"]
    )
    result.stdout.fnmatch_lines(["the network guard refused 6 connections*"])


def test_the_guard_can_be_turned_off(pytester: pytest.Pytester, listener: Listener) -> None:
    guarded_project(pytester, "castore_allow_hosts = 10.0.0.0/8", "castore_network_guard = false")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "by_")
    result.assert_outcomes(passed=2)
    assert listener.count(2) == 2


def test_the_default_allows_this_machine(pytester: pytest.Pytester, listener: Listener) -> None:
    guarded_project(pytester)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "by_ or socket_module")
    result.assert_outcomes(passed=3)
    assert listener.count(3) == 3


def test_a_recording_session_lists_calls_made_outside_castore(
    pytester: pytest.Pytester, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded_project(pytester, "castore_allow_hosts = 10.0.0.0/8")
    monkeypatch.setenv("RECORD_FIXTURES", "true")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "by_")
    result.assert_outcomes(passed=2)
    assert listener.count(2) == 2
    # By the name the test looked up (the address it connected to is that name's).
    result.stdout.fnmatch_lines(
        [f"2 calls to localhost:{listener.port} were not recorded (made outside castore*"]
    )


COLLECTION = """
import os
import socket

socket.create_connection(("127.0.0.1", int(os.environ["GUARD_PORT"])), timeout=2).close()


def test_never_runs():
    pass
"""


def test_an_import_that_connects_at_collection_is_refused(
    pytester: pytest.Pytester, listener: Listener
) -> None:
    pytester.makepyfile(test_fetch_at_import=COLLECTION)
    pytester.makeini("\n".join([*INI, "castore_allow_hosts = 10.0.0.0/8"]))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert listener.count(0) == 0
    result.stdout.fnmatch_lines(
        ["*refused a connection to 127.0.0.1:* (collecting test_fetch_at_import.py)*"]
    )


IGNORED = """
import os

import httpx
import pytest

URL = f"http://127.0.0.1:{os.environ['GUARD_PORT']}/"


@pytest.mark.castore_http(ignore_hosts=["127.0.0.1"])
def test_an_ignored_host_is_not_recorded_and_meets_the_guard():
    with pytest.raises(httpx.ConnectError, match="network guard refused"):
        httpx.get(URL, timeout=2)
"""


def test_ignored_hosts_pass_castore_by_and_meet_the_guard(
    pytester: pytest.Pytester, listener: Listener
) -> None:
    pytester.makepyfile(test_ignored=IGNORED)
    pytester.makeini("\n".join([*INI, "castore_root = recordings", "castore_allow_hosts = ::1"]))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "recordings" / "index").exists()  # nothing recorded or asked
    assert listener.count(0) == 0


GRPC = """
import os

import grpc
import grpc.aio
import pytest

TARGET = os.environ["GRPC_TARGET"]


def test_a_unary_call():
    with grpc.insecure_channel(TARGET) as channel:
        channel.unary_unary("/test.Chat/Complete")(b"hi", timeout=5)


def test_a_server_stream():
    with grpc.insecure_channel(TARGET) as channel:
        list(channel.unary_stream("/test.Chat/Stream")(b"hi", timeout=5))


async def test_an_aio_call():
    async with grpc.aio.insecure_channel(TARGET) as channel:
        await channel.unary_unary("/test.Chat/Complete")(b"hi", timeout=5)
"""


def test_grpc_calls_meet_the_guard_though_grpcio_connects_below_socket(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """grpcio opens its connections in its C core: the guard checks each call's target."""
    from tests.grpc_server import ChatServer  # noqa: PLC0415 - grpcio, only here

    server = ChatServer(delay=0).start()
    monkeypatch.setenv("GRPC_TARGET", server.target)
    for name in ("RECORD_FIXTURES", "CI"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_rpc=GRPC)
    try:
        pytester.makeini("\n".join([*INI, "asyncio_mode = auto"]))
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)
        assert server.calls == 3  # loopback is allowed by default
        pytester.makeini("\n".join([*INI, "asyncio_mode = auto", "castore_allow_hosts = ::1"]))
        refused = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        server.stop()
    refused.assert_outcomes(failed=3)
    assert server.calls == 3
    refused.stdout.fnmatch_lines(
        [f"*NetworkGuardError: castore's network guard refused a connection to {server.target}*"]
    )
