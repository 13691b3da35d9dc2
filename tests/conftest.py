"""Shared helpers: a fresh store per test, the castore command in-process or as a real
subprocess, and a way to run Python in a real subprocess.

Plain functions here (``cli``, ``castore``) are imported by test modules (``from conftest
import cli``): module-scoped fixtures can call them, which function-scoped fixtures
cannot offer.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from castore import Store, StoreConfig
from castore._upkeep import remote as remotes
from castore._upkeep.git import setup as git_setup
from castore._upkeep.remote import Transfer
from castore.cli import main

#: A machine may set PYTHONDONTWRITEBYTECODE=1 (this project's CI image does). Then every
#: Python this suite starts (a pytest session, the castore command, a git driver, a
#: campaign's child) compiles castore, pytest, click and the SDKs from source again:
#: about 0.2-0.5 s each, minutes in all. The suite's processes cache their bytecode, as a
#: developer's machine does.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

#: Nothing this suite writes outlives it, so its stores skip the fsyncs (docs/reliability.md):
#: about 9,000 of them, 1.3 ms each here, 4-6 s of a run. Writes stay atomic, which is what
#: the kill and concurrency tests check; test_durability checks that users' writes fsync.
os.environ["CASTORE_FSYNC"] = "0"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject.toml's addopts) starts one worker more than there are
    cores. Many of these tests wait rather than compute: on a pytest session or git in a
    subprocess, on a loopback server, on a streamed answer's pauses. A spare worker fills
    that idle time. On 2 cores, two interleaved rounds in one clone: 178 s and 174 s with
    3 workers, 217 s and 187 s with 2 (4 workers, one run: 209 s).
    """
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on (Linux)
        return len(os.sched_getaffinity(0)) + 1
    return (os.cpu_count() or 1) + 1


#: Test modules that share an expensive set-up of their own, run on one xdist worker
#: each, so that one worker pays for it rather than every worker:
#: - the SDKs (``clients_imported``, litellm, the client benchmark): seconds of import
#:   each (anthropic's alone is 4.7 s of CPU, openai's 1.8 s, google-genai's 2.1 s; twice
#:   that from a fresh clone, which compiles them);
#: - object storage: moto's S3 server (``s3_server``, one per worker), moto's import and
#:   obstore's.
WORKER_GROUPS = {
    f"tests/{name}.py": group
    for group, names in {
        "sdk": (
            "test_bench_clients",
            "test_cassettes_to_http",
            "test_http_old_recordings",
            "test_http_recording",
            "test_litellm",
            "test_quiet_rerecording",
            "test_sdks",
            "test_vcr_persister",
        ),
        "object storage": (
            "test_file_seam",
            "test_remote",
            "test_remote_cli",
            "test_remote_cuts",
            "test_remote_faults",
        ),
    }.items()
    for name in names
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's load scheduling (the default for ``-n``), but with each of
    :data:`WORKER_GROUPS` as one unit of work. Another ``--dist`` is left to xdist."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (controller only)

    class GroupsTogether(LoadScopeScheduling):  # type: ignore[misc]
        """Every test is its own unit, as under ``--dist load``, but for the groups'.
        Units go out largest first (``--loadscope-reorder``, on by default), so the
        groups start at once, on different workers, and cannot become the run's tail."""

        def _split_scope(self, nodeid: str) -> str:
            return WORKER_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

    return GroupsTogether(config, log)


#: What the pytest sessions this suite starts (pytester's, and pytest in a subprocess)
#: leave out: hypothesis's plugin, which imports most of hypothesis (0.4 s of each such
#: session's 1.2 s) and which only this suite's own property tests use; and anyio's,
#: which no session's tests use (about 0.1 s each: it imports anyio's socket layer).
CHILD_SESSION_OPTIONS = "-p no:hypothesispytest -p no:anyio"


@pytest.fixture(autouse=True, scope="session")
def _child_sessions_without_hypothesis() -> None:
    """Set in each worker once it runs (not at import, which the xdist workers would
    inherit): the children of its tests inherit it."""
    own = os.environ.get("PYTEST_ADDOPTS", "")
    if CHILD_SESSION_OPTIONS not in own:  # a developer's own options stay
        os.environ["PYTEST_ADDOPTS"] = f"{own} {CHILD_SESSION_OPTIONS}".strip()


@pytest.fixture(scope="session")
def one_certificate_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA bundle of one certificate, certifi's first (see :func:`pytester`)."""
    import certifi  # noqa: PLC0415

    bundle = Path(certifi.where()).read_text()
    end = "-----END CERTIFICATE-----"
    path = tmp_path_factory.mktemp("ca") / "one-certificate.pem"
    path.write_text(bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end)] + end)
    return path


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, one_certificate_bundle: Path
) -> pytest.Pytester:
    """pytest's own, with :data:`CHILD_SESSION_OPTIONS` (pytester clears PYTEST_ADDOPTS),
    and ``SSL_CERT_FILE`` naming a bundle of one certificate: every httpx client an SDK
    makes builds an SSL context from it, 1 ms where certifi's 150 certificates take 45
    (the every-client session makes 87). These sessions speak plain http on loopback, so
    no certificate is ever checked."""
    monkeypatch.setenv("PYTEST_ADDOPTS", CHILD_SESSION_OPTIONS)
    monkeypatch.setenv("SSL_CERT_FILE", str(one_certificate_bundle))
    return pytester


REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"

#: A fenced code block at the start of a line: ```lang title="path"\n…\n``` (or more
#: backticks, for a block that shows fences itself).
FENCE = re.compile(r"^(`{3,})(\w*)(?: title=\"([^\"]+)\")?\n(.*?)^\1$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A fenced code block of a docs page."""

    lang: str
    title: str | None
    body: str

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.body.splitlines() if line.strip()), "")


def markdown_blocks(text: str) -> list[Block]:
    """The fenced code blocks of Markdown text, in order (indented ones, inside list
    items, are left out: docs pages use them for example output)."""
    return [Block(m[2], m[3], m[4]) for m in FENCE.finditer(text)]


@dataclass(frozen=True)
class CommandResult:
    """What a run of the castore command gave, in-process or not: the fields tests read
    of a ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


def cli(
    *args: str, cwd: Path | None = None, stdin: str | None = None, check: bool = False
) -> CommandResult:
    """Run ``castore ARGS`` in this process through click's CliRunner: the same parsing,
    output and exit codes as the installed command, in milliseconds rather than the
    second a fresh interpreter takes. ``CASTORE_ROOT`` is unset, as in a clean shell.
    An exception castore let through (a bug: the command turns every failure into a
    message) is raised here, with its traceback. ``check`` fails the test on a non-zero
    exit, showing the output."""
    runner = CliRunner()
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = runner.invoke(main, list(args), input=stdin, env={"CASTORE_ROOT": None})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if check and result.exit_code != 0:
        pytest.fail(
            f"castore {' '.join(args)} exited {result.exit_code}:\n{result.stdout}\n{result.stderr}"
        )
    return CommandResult(result.exit_code, result.stdout, result.stderr)


def castore(
    *args: str,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m castore ARGS`` as a real subprocess, without ``CASTORE_ROOT``: for
    what only a fresh process shows (the entry point, signals, git running castore)."""
    environment = {key: value for key, value in os.environ.items() if key != "CASTORE_ROOT"}
    return subprocess.run(
        [sys.executable, "-m", "castore", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **(env or {})},
        input=stdin,
        timeout=timeout,
        check=False,
    )


#: The HTTP clients and SDKs the suites under test import.
CLIENTS = (
    "aiobotocore.session",
    "aiohttp",
    "anthropic",
    "boto3",
    "google.genai",
    "httpcore",
    "httpx",
    "openai",
    "requests",
    "urllib3",
    "vcr.serializers.yamlserializer",
    "yaml",
)


@pytest.fixture(scope="session")
def clients_imported() -> None:
    """The clients and SDKs, imported once per process, before any in-process pytester
    session: a session that imported them itself would have them forgotten after it
    (pytester restores ``sys.modules``), so each session would import them anew, seconds
    every time, and a library's cached state (httpx's map of httpcore's errors) would
    point at classes a later session no longer raises (PyYAML's C loader keeps the
    ``yaml`` module it first saw: a second one makes every tag unknown). The modules that
    use it run on one xdist worker (``WORKER_GROUPS``), so one worker imports them."""
    for name in CLIENTS:
        importlib.import_module(name)


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
        with process:  # leaving it closes the pipes and waits
            if process.poll() is None:
                process.kill()


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


def use_test_aws(patch: pytest.MonkeyPatch, folder: Path) -> dict[str, str]:
    """Test credentials in the environment, and nothing else of AWS's (no profile, no
    endpoint, no credentials file but an absent one in ``folder``): what a subprocess
    should also get. Module-scoped fixtures call it with their own MonkeyPatch."""
    for name in _AWS_VARIABLES:
        patch.delenv(name, raising=False)
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))
    for name, value in AWS_TEST_ENV.items():
        patch.setenv(name, value)
    return dict(AWS_TEST_ENV)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """:func:`use_test_aws` for one test."""
    return use_test_aws(monkeypatch, tmp_path)


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client of the test server, with the tests' own credentials. boto3 is slow
    to import: it loads where a test asks for a client, not at collection. Close it
    (``with closing(...)``): a client is a reference cycle, so its pooled socket otherwise
    lives until a garbage collection, or to the exit's ResourceWarning."""
    import boto3  # noqa: PLC0415

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the server; returns its name."""
    import uuid  # noqa: PLC0415

    name = f"castore-{uuid.uuid4().hex[:12]}"
    with contextlib.closing(aws_client("s3", endpoint)) as client:
        client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_server: str, aws_env: dict[str, str]) -> str:
    """A fresh bucket on the session's moto server; yields its name."""
    return new_bucket(s3_server)


class CuttingProxy:
    """A TCP proxy on loopback in front of a server: it passes everything, or cuts each
    response after ``cut_after`` bytes (a server that goes away in the middle of a
    transfer), or lets ``pass_puts`` HTTP PUT requests through and holds every later one
    until :meth:`release` (an upload stuck half-way, for as long as a test needs)."""

    def __init__(self, upstream: str) -> None:
        import socket  # noqa: PLC0415 - only the fault tests need a proxy
        import threading  # noqa: PLC0415
        from urllib.parse import urlsplit  # noqa: PLC0415

        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.cut_after: int | None = None
        self.pass_puts: int | None = None
        self.puts_seen = 0
        self._released = threading.Event()
        self._counting = threading.Lock()
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
        socket = self._socket
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            client.close()  # type: ignore[attr-defined]
            return
        limit = self.cut_after

        def pump(source: object, sink: object, budget: int | None, upload: bool = False) -> None:
            sent = 0
            try:
                while data := source.recv(65536):  # type: ignore[attr-defined]
                    # Without pipelining, a request's first bytes start a read of their own.
                    if upload and data.startswith(b"PUT ") and self._hold_put():
                        break  # held until released, then dropped: it never arrives
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

        self._threading.Thread(
            target=pump, args=(client, upstream, None, True), daemon=True
        ).start()
        pump(upstream, client, limit)

    def _hold_put(self) -> bool:
        """Count a PUT; past ``pass_puts``, wait for :meth:`release` and say to drop it."""
        with self._counting:
            self.puts_seen += 1
            held = self.pass_puts is not None and self.puts_seen > self.pass_puts
        if held:
            self._released.wait()
        return held

    def release(self) -> None:
        """Let the held PUTs go (each is dropped, its connection closed) and stop holding."""
        self.pass_puts = None
        self._released.set()

    def reset(self) -> None:
        """Pass everything at once, as a new proxy does."""
        self.release()
        self.cut_after, self.puts_seen = None, 0
        self._released = self._threading.Event()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


# --- real-SDK suites against the loopback LLM server ----------------------------------


@pytest.fixture
def suite(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Path:
    """The requesting test module's suite (its ``SUITE`` source, run as ``SUITE_MODULE``.py)
    as a pytester project (tests/llm_server.py's ``suite_project``); the folder returned
    is where the live run keeps what it saw, for the replay to compare."""
    from tests.llm_server import suite_project  # noqa: PLC0415 - only these suites need it

    live = tmp_path / "live"
    suite_project(pytester, monkeypatch, live, request.module.SUITE_MODULE, request.module.SUITE)
    return live


# --- real git and git-lfs -------------------------------------------------------------

needs_lfs = pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (.ci/run installs Debian's git-lfs package)",
)


def run(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program; ``check`` fails the test on a non-zero exit, showing its output."""
    result = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def git(
    repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run("git", *args, cwd=repo, check=check, env=env)


def run_pytest(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A real pytest session in ``repo``, as a user runs it there."""
    return run(
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *args,
        cwd=repo,
        check=False,
        env=env,
    )


#: The pytest.ini of the repositories tests build leaves pytest-asyncio's loop scope unset:
#: its warning would surface in this session (a subprocess printed it to its own output).
QUIET = ("-o", "asyncio_default_fixture_loop_scope=function")


#: What a test's own git must not inherit from the shell that runs the suite.
GIT_UNSET = ("CI", "RECORD_FIXTURES", "CASTORE_ROOT", "GIT_LFS_SKIP_SMUDGE")


@pytest.fixture(scope="session")
def git_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME of the tests' own, made once: a git identity, ``main`` as the first branch,
    and git-lfs's filters (``git lfs install --skip-repo``) where git-lfs is installed.
    `git lfs install` and user settings never touch the real HOME."""
    home = tmp_path_factory.mktemp("git-home")
    environment = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    for name, value in (
        ("user.email", "tests@castore.invalid"),
        ("user.name", "castore tests"),
        ("init.defaultBranch", "main"),
    ):
        git(home, "config", "--global", name, value, env=environment)
    if shutil.which("git-lfs") is not None:
        git(home, "lfs", "install", "--skip-repo", env=environment)
    return home


def use_git_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in GIT_UNSET:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def isolated_git(git_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test with :func:`git_home` as HOME (``usefixtures("isolated_git")``)."""
    use_git_home(git_home, monkeypatch)


@pytest.fixture
def session_in(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, git_home: Path
) -> Callable[..., CommandResult]:
    """A real pytest session in a folder, as a user runs it there (``env`` set for it),
    but in this process (pytester's in-process run), where :func:`run_pytest` starts a
    new interpreter: the castore plugin does the same either way (recording, a remote's
    or git-lfs's fetch, refusing pointer files), and a fresh interpreter costs about a
    second of CPU to start pytest and its plugins. xdist's workers (``-n 2``) are still
    processes of their own. HOME stays the tests' git home, whose settings hold
    git-lfs's filters (pytester points HOME at its own folder)."""
    use_git_home(git_home, monkeypatch)

    def run(work: Path, *args: str, env: dict[str, str] | None = None) -> CommandResult:
        with monkeypatch.context() as patch:
            patch.chdir(work)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *QUIET, *args)
        return CommandResult(
            int(result.ret), "\n".join(result.outlines), "\n".join(result.errlines)
        )

    return run


def make_repo(path: Path) -> Path:
    """A git repository whose pytest.ini puts the store in recordings/."""
    path.mkdir()
    git(path, "init", "-q")
    (path / "pytest.ini").write_text("[pytest]\ncastore_root = recordings\n")
    return path


#: A test module that replays its ``keys`` recordings (``answer(module, key)``, as
#: :func:`recorded_project` writes them) and fails on any call to the real API.
REPLAYING_MODULE = """
def never():
    raise AssertionError("the real API was called during replay")

def test_replay(recorder):
    for key in range({keys}):
        value = recorder.get_or_record_sync(f"key {{key}}", never)
        assert (value["module"], value["key"]) == ({module}, key)
"""


#: zstd level of the stores tests build to exercise remotes, packs and git rather than
#: compression: castore's default, 19, costs 1-2 ms a value, a second or more a store.
QUICK_LEVEL = 3


def quick_store(root: Path) -> Store:
    """An empty store whose castore.json asks for :data:`QUICK_LEVEL` (as a user's may)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "castore.json").write_text(json.dumps(StoreConfig(level=QUICK_LEVEL).to_json()))
    return Store(root)


def recorded_project(
    path: Path, modules: int, keys: int, answer: Callable[[int, int], dict[str, Any]]
) -> Store:
    """A :func:`make_repo` repository with ``tests/test_m<n>.py`` for each of ``modules``
    modules (:data:`REPLAYING_MODULE`) and their recordings, ``answer(module, key)``
    under ``key <k>``, written in one batch at :data:`QUICK_LEVEL`. Returns its store,
    not yet packed."""
    repo = make_repo(path)
    (repo / "tests").mkdir()
    store = quick_store(repo / "recordings")
    with store.batch():
        for module in range(modules):
            (repo / "tests" / f"test_m{module}.py").write_text(
                REPLAYING_MODULE.format(keys=keys, module=module)
            )
            for key in range(keys):
                store.put(f"tests/test_m{module}", f"key {key}", answer(module, key))
    return store


def push_to_bare(repo: Path, folder: Path) -> Path:
    """A bare repository, ``folder/remote.git``, made ``repo``'s origin and given its
    main branch (its LFS objects too, where git-lfs is set up): what a team's server
    holds. Returns its path (clone from its ``as_uri()``)."""
    bare = folder / "remote.git"
    git(folder, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", bare.as_uri())
    git(repo, "push", "-q", "origin", "main")
    return bare


def publish_store(repo: Path, folder: Path, url: str, endpoint: str) -> tuple[Transfer, str]:
    """Set ``repo``'s store (``recordings/``) up as a team would with pack data on object
    storage: the remote ``origin`` at ``url`` through ``endpoint``, ``castore git setup
    --remote origin``, a push of everything, a commit, and a bare git remote in
    ``folder`` holding main (indexes and pack tables). Returns the push's report and the
    bare remote's URL, which a clone without pack data comes from."""
    store = Store(repo / "recordings")
    remotes.add_remote(store, "origin", url, options={"endpoint": endpoint})
    git_setup(store.root, lfs=False, remote="origin")
    pushed = remotes.push(Store(store.root))
    commit_all(repo, "recordings, pack data on the remote")
    return pushed, push_to_bare(repo, folder).as_uri()


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
