"""Shared helpers: a fresh store per test and a way to run Python in a real subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from castore import Store

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter; fail the test on a non-zero exit."""

    def run(
        code: str, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            _python(code, *args),
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"subprocess failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


@pytest.fixture
def start_python() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a Python snippet in the background, stdout piped, line-buffered."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            _python(code, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


# --- object storage on loopback: moto's S3 API ----------------------------------------------

#: Credentials for moto (which accepts any unless told to check): never real ones.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "castore-test-key",
    "AWS_SECRET_ACCESS_KEY": "castore-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "CASTORE_REMOTE",
)


def start_s3_server() -> tuple[object, str]:
    """A moto S3 server on a free loopback port, in this process: (server, endpoint)."""
    import logging  # noqa: PLC0415 - moto is imported only by tests that use a server

    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 API on loopback, started once per test process; yields its endpoint."""
    server, endpoint = start_s3_server()
    yield endpoint
    server.stop()  # type: ignore[attr-defined]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Test credentials in the environment, and nothing else of AWS's (no profile, no
    endpoint): what a subprocess should also get."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(AWS_TEST_ENV)


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the server; returns its name."""
    import uuid  # noqa: PLC0415

    import boto3  # noqa: PLC0415 - slow to import: only where a bucket is made

    name = f"castore-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_server: str, aws_env: dict[str, str]) -> str:
    """A fresh bucket on the session's moto server; yields its name."""
    return new_bucket(s3_server)


class CuttingProxy:
    """A TCP proxy on loopback in front of a server: it passes everything, or cuts each
    response after ``cut_after`` bytes (a server that goes away in the middle of a
    transfer), or holds each new connection ``delay`` seconds (a slow network)."""

    def __init__(self, upstream: str) -> None:
        import socket  # noqa: PLC0415 - only the fault tests need a proxy
        import threading  # noqa: PLC0415
        from urllib.parse import urlsplit  # noqa: PLC0415

        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.cut_after: int | None = None
        self.delay = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._socket = socket
        self._threading = threading
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: object) -> None:
        import time  # noqa: PLC0415

        socket = self._socket
        if self.delay:
            time.sleep(self.delay)
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            client.close()  # type: ignore[attr-defined]
            return
        limit = self.cut_after

        def pump(source: object, sink: object, budget: int | None) -> None:
            sent = 0
            try:
                while data := source.recv(65536):  # type: ignore[attr-defined]
                    if budget is not None and sent + len(data) >= budget:
                        sink.sendall(data[: max(0, budget - sent)])  # type: ignore[attr-defined]
                        break
                    sink.sendall(data)  # type: ignore[attr-defined]
                    sent += len(data)
            except OSError:
                pass
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
                end.close()  # type: ignore[attr-defined]

        self._threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
        pump(upstream, client, limit)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
