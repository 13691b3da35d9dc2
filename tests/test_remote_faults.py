"""Faults of the remote tier, each ending in a clear castore error or a correct retry,
never in a wrong value or a damaged cache: a server that goes away mid-transfer, damaged
and truncated objects, a push killed with SIGKILL, missing and wrong credentials, a
bucket that does not exist, and canary credentials that must never reach a file.

moto's S3 API runs on loopback; a TCP proxy in front of it cuts transfers on demand.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import (
    CommandResult,
    CuttingProxy,
    aws_client,
    cli,
    git,
    new_bucket,
    publish_store,
    quick_store,
    recorded_project,
    use_git_home,
    use_test_aws,
)

from castore import Store
from castore._storage.files.object_store import ObjectStoreFiles
from castore._storage.layout import FileKind
from castore._storage.store import internals
from castore._upkeep import remote as remotes
from castore._upkeep.packing import pack_store
from castore._upkeep.remote_gc import collect_remote
from castore.errors import (
    RemoteAccessError,
    RemoteNotFoundError,
    RemoteObjectError,
    RemoteUnavailableError,
)

pytestmark = pytest.mark.usefixtures("isolated_git")

MODULES = 4
KEYS = 30


def answer(module: int, key: int) -> dict[str, object]:
    # Incompressible: packs of a hundred KB or more, which a cut transfer leaves half-way.
    noise = os.urandom(4000).hex()
    return {"module": module, "key": key, "noise": noise}


@pytest.fixture(scope="module")
def module_proxy(s3_server: str) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(s3_server)
    yield cutting
    cutting.close()


@pytest.fixture
def proxy(module_proxy: CuttingProxy) -> Iterator[CuttingProxy]:
    """The module's proxy (the endpoint the published stores name), passing everything
    at once when the test starts and again after it."""
    module_proxy.reset()
    yield module_proxy
    module_proxy.reset()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, git_home: Path) -> Path:
    """A :func:`recorded_project` repository, its store packed, made once per module (per
    xdist worker): :func:`publish` starts from a copy of it rather than recording and
    packing a megabyte of random values again."""
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        repo = tmp_path_factory.mktemp("recorded") / "repo"
        pack_store(recorded_project(repo, MODULES, KEYS, answer), target_bytes=128 * 1024)
    return repo


def publish(recorded: Path, folder: Path, bucket: str, endpoint: str) -> tuple[Path, str, str]:
    """(repository, its bare git remote's URL, the bucket): a copy of :func:`recorded`
    with its pack data pushed to moto, reached through ``endpoint`` (the proxy, which
    castore.json names)."""
    repo = folder / "repo"
    shutil.copytree(recorded, repo, symlinks=True)
    _, bare = publish_store(repo, folder, f"s3://{bucket}/store", endpoint)
    return repo, bare, bucket


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
    git_home: Path,
    s3_server: str,
    module_proxy: CuttingProxy,
    recorded: Path,
) -> Iterator[tuple[Path, str, str]]:
    """:func:`publish`, once per module (per xdist worker), for the tests that only read
    it (the repository, its bucket, its bare remote), cloning it into their own folders.
    Tests that damage the bucket or push to it use :func:`own_published`."""
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        folder = tmp_path_factory.mktemp("published")
        use_test_aws(patch, folder)
        yield publish(recorded, folder, new_bucket(s3_server), module_proxy.endpoint)


@pytest.fixture
def own_published(
    recorded: Path, tmp_path: Path, s3_bucket: str, proxy: CuttingProxy
) -> tuple[Path, str, str]:
    """:func:`publish`, for this test alone: its own repository, bucket and bare remote."""
    return publish(recorded, tmp_path, s3_bucket, proxy.endpoint)


def clone(published: tuple[Path, str, str], target: Path) -> Path:
    git(target.parent, "clone", "-q", published[1], str(target))
    return target


def local_packs(work: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (work / "recordings" / "packs").iterdir()}


def test_transfers_cut_mid_way_are_resumed_and_every_object_checked(
    published: tuple[Path, str, str],
    proxy: CuttingProxy,
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    """Every response stops 60 KB in (packs are larger): the client resumes each body
    where it stopped, and each pack still hashes to its name before it is kept."""
    work = clone(published, tmp_path / "clone")
    proxy.cut_after = 60_000
    run = session_in(work, "tests/test_m1.py")
    assert run.returncode == 0, run.stdout
    assert "from remote origin" in run.stdout
    assert castore_verify(work) == 0


def test_a_server_that_goes_away_fails_clearly_and_keeps_no_partial_file(
    published: tuple[Path, str, str],
    proxy: CuttingProxy,
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    work = clone(published, tmp_path / "clone")
    proxy.cut_after = 0  # the server accepts, then drops every connection
    run = session_in(work, "tests/test_m1.py")
    assert run.returncode == 1
    assert "could not fetch" in run.stdout and "cannot be reached" in run.stdout, run.stdout
    assert "RemoteUnavailableError" in run.stdout  # the replay's error, not a wrong value
    names = set(local_packs(work))
    assert not any(name.endswith(".pack") for name in names)  # nothing half-written kept
    assert not any(name.startswith(".") for name in names)  # no temporary file left
    proxy.cut_after = None  # the server is back: the same run fetches and passes
    again = session_in(work, "tests/test_m1.py")
    assert again.returncode == 0, again.stdout
    assert "from remote origin" in again.stdout
    assert castore_verify(work) == 0


def castore_verify(work: Path) -> int:
    return cli("verify", cwd=work).returncode


def test_missing_credentials_are_named_before_any_request(
    published: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    work = clone(published, tmp_path / "clone")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(RemoteAccessError, match="no credentials were found") as raised:
        remotes.pull(Store(work / "recordings"))
    assert "AWS_ACCESS_KEY_ID" in str(raised.value) and "--anonymous" in str(raised.value)
    run = session_in(work, "tests/test_m0.py")
    assert run.returncode == 1 and "no credentials were found" in run.stdout


def test_a_profile_in_the_shared_credentials_file_is_used(
    published: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_env: dict[str, str],
) -> None:
    work = clone(published, tmp_path / "clone")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[ci]\naws_access_key_id = profile-key\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "ci")
    pulled = remotes.pull(Store(work / "recordings"))
    assert pulled.copied.files == pulled.wanted - pulled.already > 0


def set_moto_auth(count: float) -> None:
    """moto checks signatures and IAM policies once its no-auth allowance is used up. The
    server runs in this process (ThreadedMotoServer), so its settings are set here, as
    its /moto-api/reset-auth endpoint would (which fails under the threaded server)."""
    from moto import settings  # noqa: PLC0415
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415

    settings.INITIAL_NO_AUTH_ACTION_COUNT = count
    ActionAuthenticatorMixin.request_count = 0


def test_wrong_credentials_are_refused_by_name(
    published: tuple[Path, str, str],
    tmp_path: Path,
    s3_server: str,
    monkeypatch: pytest.MonkeyPatch,
    aws_env: dict[str, str],
) -> None:
    work = clone(published, tmp_path / "clone")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    with closing(aws_client("iam", s3_server)) as iam:
        iam.create_user(UserName="castore-ci")
        iam.put_user_policy(
            UserName="castore-ci", PolicyName="s3", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="castore-ci")["AccessKey"]
    set_moto_auth(0)
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        with pytest.raises(RemoteAccessError, match="refused access") as raised:
            remotes.pull(Store(work / "recordings"))
        assert "InvalidAccessKeyId" in str(raised.value) or "403" in str(raised.value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        pulled = remotes.pull(Store(work / "recordings"))  # the right ones work
        assert pulled.copied.files == pulled.wanted - pulled.already > 0
    finally:
        set_moto_auth(float("inf"))


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_a_damaged_remote_object_is_refused_by_name_and_never_kept(
    own_published: tuple[Path, str, str],
    s3_server: str,
    tmp_path: Path,
    aws_env: dict[str, str],
    damage: str,
    session_in: Callable[..., CommandResult],
) -> None:
    repo, _, bucket = own_published
    store = Store(repo / "recordings")
    entry = store.entry("tests/test_m2", "key 0")
    assert entry is not None
    victim = internals(store).blobs.packs.pack_of(entry.blob)
    assert victim is not None
    key = f"store/packs/{victim}.pack"
    with closing(aws_client("s3", s3_server)) as client:
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        broken = data[: len(data) // 2] if damage == "truncated" else data[:100] + b"X" + data[101:]
        client.put_object(Bucket=bucket, Key=key, Body=broken)

    work = clone(own_published, tmp_path / "clone")
    run = session_in(work, "tests/test_m2.py")
    assert run.returncode == 1
    assert "damaged and were not kept" in run.stdout, run.stdout
    assert "RemoteObjectError" in run.stdout and victim[:16] in run.stdout
    assert f"{victim}.pack" not in local_packs(work)
    with pytest.raises(RemoteObjectError, match="does not hash to its name"):
        Store(work / "recordings").get("tests/test_m2", "key 0")
    assert f"{victim}.pack" not in local_packs(work)


PUSH = textwrap.dedent(
    """
    import sys
    from castore import Store
    from castore._upkeep import remote
    remote.push(Store(sys.argv[1]))
    print("pushed")
    """
)


def test_a_push_killed_with_sigkill_leaves_no_table_naming_a_missing_pack(
    tmp_path: Path, s3_server: str, proxy: CuttingProxy, aws_env: dict[str, str]
) -> None:
    bucket = new_bucket(s3_server)
    store = quick_store(tmp_path / "store")
    with store.batch():
        for module in range(10):
            for key in range(KEYS):
                store.put(f"tests/test_m{module}", f"key {key}", answer(module, key))
    pack_store(store, target_bytes=64 * 1024)
    remotes.add_remote(store, "origin", f"s3://{bucket}", options={"endpoint": proxy.endpoint})
    proxy.pass_puts = 3  # three uploads land, the rest hang: the kill lands mid-push
    # Its output is not read: DEVNULL, not an unread pipe left open by the kill.
    child = subprocess.Popen(
        [sys.executable, "-c", PUSH, str(store.root)], stdout=subprocess.DEVNULL
    )
    with closing(aws_client("s3", s3_server)) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
            if len(listed) >= 3 and proxy.puts_seen > 3:  # and the push waits on a held one
                break
            time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    proxy.release()
    remote = ObjectStoreFiles("origin", f"s3://{bucket}", {"endpoint": s3_server})
    packs = {info.name for info in remote.listing(FileKind.PACK)}
    tables = {info.name for info in remote.listing(FileKind.PACK_INDEX)}
    every_pack = set(internals(store).blobs.packs.names())
    assert 0 < len(packs) < len(every_pack), "the kill should land mid-push"
    assert tables <= packs  # no table on the remote names a pack it lacks
    for name in packs:  # and every object there is whole
        assert (store.root / "packs" / f"{name}.pack").read_bytes() == remote.read(
            FileKind.PACK, name
        )
    finished = remotes.push(Store(store.root))  # the next push finishes the job
    assert finished.copied.files == finished.wanted - finished.already
    assert {info.name for info in remote.listing(FileKind.PACK_INDEX)} == every_pack


def test_a_bucket_that_does_not_exist_is_named(
    tmp_path: Path, s3_server: str, aws_env: dict[str, str]
) -> None:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "key", answer(0, 0))
    remotes.add_remote(
        store, "origin", "s3://no-such-bucket-here/x", options={"endpoint": s3_server}
    )
    with pytest.raises(RemoteNotFoundError, match="the bucket does not exist"):
        remotes.push(Store(store.root))
    for pack in (store.root / "packs").glob("*.pack"):
        pack.unlink()  # now a pull has something to fetch
    with pytest.raises(RemoteNotFoundError, match="the bucket does not exist"):
        remotes.pull(Store(store.root))
    with pytest.raises(RemoteNotFoundError, match="the bucket does not exist"):
        Store(store.root).get("tests/test_a", "key")


def test_an_unreachable_remote_is_named(tmp_path: Path, aws_env: dict[str, str]) -> None:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "key", answer(0, 0))
    remotes.add_remote(store, "origin", "s3://bucket/x", options={"endpoint": "http://127.0.0.1:9"})
    with pytest.raises(RemoteUnavailableError, match="cannot be reached"):
        remotes.push(Store(store.root))


def test_no_credential_reaches_any_file_castore_writes(
    own_published: tuple[Path, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_in: Callable[..., CommandResult],
) -> None:
    """Canary credentials in the environment through add, push, a replay that fetches,
    pull and remote gc: no file in the repository, the clone or their stores holds them."""
    canary_key, canary_secret = "AKIACANARY0CANARY0CA", "canary-secret-7f3a9e1c"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", canary_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary_secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "canary-token-55aa")
    repo = own_published[0]
    store = Store(repo / "recordings")
    remotes.add_remote(store, "backup", (tmp_path / "backup").as_uri())
    store.put("tests/test_m0", "key 0", answer(0, 0))
    remotes.push(Store(store.root))
    work = clone(own_published, tmp_path / "clone")
    assert session_in(work, "tests/test_m3.py").returncode == 0
    remotes.pull(Store(work / "recordings"))
    collect_remote(Store(repo / "recordings"), dry_run=True)
    for folder in (repo, work, tmp_path / "backup"):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                for canary in (canary_key, canary_secret, "canary-token-55aa"):
                    assert canary.encode() not in content, path
