"""The remote tier on object storage: moto's S3 API on loopback (started by the tests),
a local-folder remote, real git clones and real pytest sessions.

A clone made after ``castore git setup --remote`` holds the indexes and the packs'
``.idx`` tables but no pack data; its test run fetches, at collection, only the packs
its tests need, in one batch, and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import (
    CommandResult,
    aws_client,
    cli,
    commit_all,
    git,
    new_bucket,
    publish_store,
    recorded_project,
    use_git_home,
    use_test_aws,
)

from castore import Store
from castore._storage.files.seam import FileHandle
from castore._storage.layout import FileKind
from castore._storage.store import internals
from castore._upkeep import remote as remotes
from castore._upkeep.git import setup
from castore._upkeep.packing import pack_store
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.remote_gc import collect_remote
from castore.errors import LostBlobError, RemoteAccessError, RemoteConfigError

pytestmark = pytest.mark.usefixtures("isolated_git")

MODULES = 6
KEYS = 40


def answer(module: int, key: int) -> dict[str, object]:
    text = " ".join(f"w{(module * 7919 + key * 104729 + n * 31) % 100003}" for n in range(400))
    return {"module": module, "key": key, "text": text}


def packs_needed(root: Path, namespaces: list[str]) -> set[str]:
    store = Store(root)
    packs = internals(store).blobs.packs
    return {
        name
        for namespace in namespaces
        for entry in store.entries(namespace).values()
        if (name := packs.pack_of(entry.blob))
    }


def on_remote(store: Store, kind: FileKind) -> dict[str, int]:
    return {info.name: info.size for info in remotes.remote_files(store).listing(kind)}


@pytest.fixture
def s3_url(s3_server: str, s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/recordings"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, git_home: Path) -> Path:
    """A :func:`recorded_project` repository, its store packed at a small target size, made
    once per module (per xdist worker): :func:`publish` starts from a copy of it rather
    than recording and packing the same values again (0.8 s of CPU each time)."""
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        repo = tmp_path_factory.mktemp("recorded") / "repo"
        pack_store(recorded_project(repo, MODULES, KEYS, answer), target_bytes=8 * 1024)
    return repo


def publish(recorded: Path, folder: Path, s3_server: str, s3_url: str) -> tuple[Path, str]:
    """A copy of :func:`recorded` whose packed store is pushed to moto's S3 (pack data)
    and a bare git remote (indexes and tables): ``castore git setup --remote origin``."""
    repo = folder / "repo"
    shutil.copytree(recorded, repo, symlinks=True)
    report, bare = publish_store(repo, folder, s3_url, s3_server)
    assert report.copied.files == report.wanted
    return repo, bare


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, git_home: Path, s3_server: str, recorded: Path
) -> Iterator[tuple[Path, str]]:
    """:func:`publish`, once per module (per xdist worker), for the tests that only read
    it (the repository, its bucket and its bare remote), cloning it into their own
    folders. Tests that push, delete or change the bucket's policy use
    :func:`own_published`."""
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        folder = tmp_path_factory.mktemp("published")
        use_test_aws(patch, folder)
        yield publish(recorded, folder, s3_server, f"s3://{new_bucket(s3_server)}/recordings")


@pytest.fixture
def own_published(recorded: Path, tmp_path: Path, s3_server: str, s3_url: str) -> tuple[Path, str]:
    """:func:`publish`, for this test alone: its own repository, bucket and bare remote."""
    return publish(recorded, tmp_path, s3_server, s3_url)


def clone(published: tuple[Path, str], target: Path) -> Path:
    git(target.parent, "clone", "-q", published[1], str(target))
    assert not list((target / "recordings" / "packs").glob("*.pack"))  # no pack data
    assert list((target / "recordings" / "packs").glob("*.idx"))
    return target


def test_castore_json_names_the_remote_and_no_credential(published: tuple[Path, str]) -> None:
    repo, _ = published
    document = json.loads((repo / "recordings" / "castore.json").read_text())
    (spec,) = document["remotes"].values()
    assert set(spec) == {"url", "endpoint"} and document["default_remote"] == "origin"
    tracked = git(repo, "ls-files").stdout
    assert ".idx" in tracked and ".pack" not in tracked


def test_a_clone_without_pack_data_fetches_only_its_module_s_packs_once(
    published: tuple[Path, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    work = clone(published, tmp_path / "clone")
    root = work / "recordings"
    needed = packs_needed(root, ["tests/test_m4"])
    assert needed < {path.stem for path in (root / "packs").glob("*.idx")}
    run = session_in(work, "tests/test_m4.py")
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(
        r"fetched (\d+) objects \(([0-9.]+) MB\) from remote origin in [0-9.]+ s", run.stdout
    )
    assert found and int(found.group(1)) == len(needed), run.stdout
    assert f"{KEYS} replayed, 0 missing or stale" in run.stdout
    assert {path.stem for path in (root / "packs").glob("*.pack")} == needed
    again = session_in(work, "tests/test_m4.py")  # all present now: a few stats, no fetch
    assert again.returncode == 0 and "fetched" not in again.stdout


def test_xdist_workers_fetch_each_pack_once(
    published: tuple[Path, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    work = clone(published, tmp_path / "clone")
    needed = packs_needed(work / "recordings", [f"tests/test_m{n}" for n in range(MODULES)])
    run = session_in(work, "-n", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    counts = [int(n) for n in re.findall(r"fetched (\d+) objects", run.stdout)]
    assert counts == [len(needed)], run.stdout
    assert f"{MODULES * KEYS} replayed" in run.stdout


def test_pull_brings_a_selection_or_everything(
    published: tuple[Path, str], tmp_path: Path, aws_env: dict[str, str]
) -> None:
    work = clone(published, tmp_path / "clone")
    store = Store(work / "recordings")
    chosen = remotes.selected_namespaces(store, ["tests/test_m1"])
    first = remotes.pull(store, namespaces=chosen)
    needed = packs_needed(store.root, ["tests/test_m1"])
    assert first.copied.files == len(needed)
    assert {path.stem for path in (store.root / "packs").glob("*.pack")} == needed
    everything = remotes.pull(Store(store.root))
    assert everything.copied.files + len(needed) == len(list((store.root / "packs").glob("*.idx")))
    assert cli("verify", cwd=work).returncode == 0
    with pytest.raises(RemoteConfigError, match="names no namespace"):
        remotes.selected_namespaces(store, ["tests/test_nothing"])


def test_push_uploads_only_what_the_remote_lacks(own_published: tuple[Path, str]) -> None:
    repo, _ = own_published
    store = Store(repo / "recordings")
    again = remotes.push(store)
    assert again.copied.files == 0 and again.already == again.wanted
    local = internals(store).blobs.files
    for kind in (FileKind.PACK, FileKind.PACK_INDEX):
        held = on_remote(store, kind)
        assert held == {info.name: info.size for info in local.listing(kind)}
    store.put("tests/test_m0", "key 0", {"module": 0, "key": 0, "text": "re-recorded"})
    third = remotes.push(store)
    assert third.packing.blobs_packed == 1  # a remote holds packs: push packs first
    assert third.copied.files == 2  # one small pack and its table


def test_a_lost_remote_object_names_blob_pack_remote_and_how_to_re_record(
    own_published: tuple[Path, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    repo, _ = own_published
    work = clone(own_published, tmp_path / "clone")
    (victim,) = packs_needed(work / "recordings", ["tests/test_m2"]) - packs_needed(
        work / "recordings", [f"tests/test_m{n}" for n in range(MODULES) if n != 2]
    ) or [next(iter(packs_needed(work / "recordings", ["tests/test_m2"])))]
    remotes.remote_files(Store(repo / "recordings")).delete(FileKind.PACK, victim)
    store = Store(work / "recordings")
    entry = next(
        entry
        for entry in store.entries("tests/test_m2").values()
        if internals(store).blobs.packs.pack_of(entry.blob) == victim
    )
    key = next(k for k, e in store.entries("tests/test_m2").items() if e is entry)
    with pytest.raises(LostBlobError) as raised:
        store.get("tests/test_m2", key)
    message = str(raised.value)
    for part in (entry.blob[:16], victim[:16], "remote origin", "RECORD_FIXTURES=true", key):
        assert part in message
    run = session_in(work, "tests/test_m2.py")
    assert run.returncode == 1
    assert "not on the remote" in run.stdout and "castore push" in run.stdout


def test_a_bucket_that_allows_anonymous_reads_serves_a_fork_without_credentials(
    own_published: tuple[Path, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    s3_server: str,
    monkeypatch: pytest.MonkeyPatch,
    s3_url: str,
    session_in: Callable[..., CommandResult],
) -> None:
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    allow_public_reads(s3_server, bucket)
    work = clone(own_published, tmp_path / "fork")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    store = Store(work / "recordings")
    with pytest.raises(RemoteAccessError, match="no credentials were found"):
        remotes.pull(store)
    remotes.add_remote(
        store, "public", s3_url, options={"endpoint": s3_server, "anonymous": True}, default=True
    )
    run = session_in(work, "tests/test_m3.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"fetched \d+ objects .* from remote public", run.stdout)


def allow_public_reads(endpoint: str, bucket: str) -> None:
    """A bucket policy that lets anyone read (what a project grants its forks)."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    with closing(aws_client("s3", endpoint)) as client:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_the_standard_endpoint_variable_works_instead_of_an_option(
    tmp_path: Path,
    s3_server: str,
    s3_url: str,
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "key", answer(1, 1))
    remotes.add_remote(store, "origin", s3_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    assert remotes.push(store).copied.files >= 2
    assert on_remote(store, FileKind.PACK)


def test_a_folder_remote_pushes_pulls_and_replays(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for key in range(5):
        store.put("tests/test_a", f"key {key}", answer(1, key))
    remotes.add_remote(store, "shelf", (tmp_path / "shelf").as_uri())
    pushed = remotes.push(store)
    assert pushed.copied.files == pushed.wanted
    for pack in (store.root / "packs").glob("*.pack"):
        pack.unlink()
    fresh = Store(store.root)
    assert fresh.get("tests/test_a", "key 3") == answer(1, 3)  # read through the folder


def test_remote_names_urls_and_options_are_checked_and_never_hold_credentials(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    for url in ("s3://AKIA:secret@bucket/x", "https://u:p@host/x", "s3://b/x?X-Amz-Signature=1"):
        with pytest.raises(RemoteConfigError):
            remotes.add_remote(store, "bad", url)
    with pytest.raises(RemoteConfigError, match="unknown remote option"):
        remotes.add_remote(store, "bad", "s3://bucket/x", options={"secret_access_key": "x"})
    with pytest.raises(RemoteConfigError, match="not one of"):
        remotes.add_remote(store, "bad", "ftp://host/x")
    remotes.add_remote(store, "good", "s3://bucket/x", options={"region": "eu-west-1"})
    with pytest.raises(RemoteConfigError, match="already has a remote"):
        remotes.add_remote(store, "good", "s3://bucket/y")
    assert not (store.root / "castore.json").read_text().count("secret")


# --- remote gc -----------------------------------------------------------------------


def test_remote_gc_keeps_what_any_branch_needs_and_what_is_young(
    own_published: tuple[Path, str],
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    repo, _ = own_published
    store = Store(repo / "recordings")
    git(repo, "checkout", "-q", "-b", "feature")
    store.put("tests/test_m0", "feature key", answer(9, 9))
    remotes.push(Store(store.root))
    commit_all(repo, "a recording only the feature branch has")
    feature_packs = set(on_remote(store, FileKind.PACK))
    git(repo, "checkout", "-q", "main")
    store = Store(repo / "recordings")
    store.put("tests/test_m1", "key 0", {**answer(1, 0), "text": "re-recorded on main"})
    remotes.push(Store(store.root))
    commit_all(repo, "re-record on main")

    dry = collect_remote(Store(store.root), grace=dt.timedelta(0), dry_run=True)
    assert dry.deleted == []  # every pack is used by main or by feature
    git(repo, "branch", "-q", "-D", "feature")
    young = collect_remote(Store(store.root), dry_run=True)
    assert young.deleted == [] and young.young == 2  # the feature pack and its table
    gone = collect_remote(Store(store.root), grace=dt.timedelta(0))
    assert {(info.kind, info.name) for info in gone.deleted} == {
        (kind, name)
        for name in feature_packs - set(internals(Store(store.root)).blobs.packs.names())
        for kind in (FileKind.PACK, FileKind.PACK_INDEX)
    }
    assert gone.deleted[0].kind is FileKind.PACK_INDEX  # a table goes before its pack
    assert cli("verify", cwd=repo).returncode == 0
    assert session_in(repo).returncode == 0


def test_push_and_pull_handles_are_sorted_data_before_tables(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "key", answer(1, 1))
    pack_store(store)
    wanted = remotes.wanted_files(UpkeepParts.of(store), None)
    kinds = [handle.kind for handle in wanted]
    assert kinds.index(FileKind.PACK_INDEX) > kinds.index(FileKind.PACK)
    assert all(isinstance(handle, FileHandle) for handle in wanted)


NO_OBSTORE = """
import sys
sys.modules["obstore"] = None  # as if castore[remote] were not installed
from castore import Store
from castore.errors import RemoteConfigError
store = Store(sys.argv[1])
assert store.get("tests/test_a", "loose key") == {"module": 1}  # no remote needed: fine
try:
    store.get("tests/test_a", "key 1")
except RemoteConfigError as error:
    print(error)
"""


def test_without_obstore_a_store_opens_and_a_fetch_names_the_install(
    tmp_path: Path, run_python
) -> None:
    store = Store(tmp_path / "store")
    for key in range(3):
        store.put("tests/test_a", f"key {key}", answer(1, key))
    remotes.add_remote(store, "shelf", (tmp_path / "shelf").as_uri())
    remotes.push(Store(store.root))
    for pack in (store.root / "packs").glob("*.pack"):
        pack.unlink()
    Store(store.root).put("tests/test_a", "loose key", {"module": 1})
    result = run_python(NO_OBSTORE, str(store.root))
    assert "pip install 'castore[remote]'" in result.stdout, result.stdout + result.stderr


def test_git_setup_remote_takes_committed_packs_out_of_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    store = Store(repo / "recordings")
    for key in range(5):
        store.put("tests/test_a", f"key {key}", answer(1, key))
    pack_store(store)
    setup(store.root, lfs=False)
    commit_all(repo, "packs in plain git")
    assert ".pack" in git(repo, "ls-files").stdout
    remotes.add_remote(store, "shelf", (tmp_path / "shelf").as_uri())
    report = setup(store.root, lfs=False, remote="shelf")
    assert any("from git's index" in action for action in report.actions)
    tracked = git(repo, "ls-files").stdout
    assert ".pack" not in tracked and ".idx" in tracked
    assert list((store.root / "packs").glob("*.pack"))  # the files themselves stay
    assert git(repo, "status", "--porcelain").stdout.count(".pack") == 1  # staged removal
