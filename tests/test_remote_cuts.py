"""Cutting a few blobs out of a big remote pack instead of fetching it whole.

A CI shard often needs a handful of blobs from a pack that other modules fill: at 100x
the benchmark's corpus a twentieth of the modules needed 8 of 19 packs, five of them for
9 entries. Here one big pack holds a module of large answers and a module of a few small ones;
a clone without pack data (``castore git setup --remote``) that runs only the small
module fetches those blobs' frames by ranged reads of the pack on moto's S3, checks
each, and keeps them in the store's git-ignored local state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest
from conftest import (
    REPLAYING_MODULE,
    CommandResult,
    cli,
    commit_all,
    git,
    make_repo,
    needs_lfs,
    publish_store,
    push_to_bare,
    quick_store,
)

from castore import Store
from castore._storage.layout import CUT_FRAMES_DIR, STATE_DIR, FileKind
from castore._storage.store import internals
from castore._upkeep import remote as remotes
from castore._upkeep.packing import pack_store

pytestmark = pytest.mark.usefixtures("isolated_git")

#: Module 0: large, incompressible answers that make one pack of about 4.9 MB.
LARGE_KEYS, LARGE = 24, 200 * 1024
#: Module 1: a few short answers in that same pack.
KEYS = 8


def answer(module: int, key: int) -> dict[str, object]:
    if module == 0:
        return {"module": 0, "key": key, "data": blake3.blake3(b"%d" % key).digest(LARGE)}
    return {"module": module, "key": key, "text": f"a short answer, number {key}"}


def project(repo: Path) -> Store:
    """Module 0 reads its :data:`LARGE_KEYS` answers, module 1 its :data:`KEYS`."""
    make_repo(repo)
    (repo / "tests").mkdir()
    store = quick_store(repo / "recordings")
    with store.batch():
        for module, keys in ((0, LARGE_KEYS), (1, KEYS)):
            module_text = REPLAYING_MODULE.format(keys=keys, module=module)
            (repo / "tests" / f"test_m{module}.py").write_text(module_text)
            for key in range(keys):
                store.put(f"tests/test_m{module}", f"key {key}", answer(module, key))
    return store


@pytest.fixture
def published(tmp_path: Path, s3_server: str, s3_bucket: str) -> tuple[Path, str, str]:
    """A repository whose store is one pack on moto's S3, its indexes and the pack's
    ``.idx`` in a bare git remote; returns (repository, bare remote URL, pack name)."""
    repo = tmp_path / "repo"
    store = project(repo)
    pack_store(store)
    (pack,) = internals(store).blobs.packs.names()
    _, bare = publish_store(repo, tmp_path, f"s3://{s3_bucket}/rec", s3_server)
    return repo, bare, pack


def clone(published: tuple[Path, str, str], target: Path) -> Path:
    git(target.parent, "clone", "-q", published[1], str(target))
    assert not list((target / "recordings" / "packs").glob("*.pack"))
    return target


def cut_frames(work: Path) -> list[Path]:
    return sorted((work / "recordings" / STATE_DIR / CUT_FRAMES_DIR).rglob("*.zst"))


def fetched(stdout: str) -> tuple[int, float] | None:
    found = re.search(r"fetched (\d+) objects \(([0-9.]+) MB\) from remote origin", stdout)
    return None if found is None else (int(found.group(1)), float(found.group(2)))


def test_a_module_that_reads_a_few_blobs_of_a_big_pack_fetches_only_those(
    published: tuple[Path, str, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    repo, _, pack = published
    pack_bytes = (repo / "recordings" / "packs" / f"{pack}.pack").stat().st_size
    assert pack_bytes > 4 << 20  # big enough to be cut
    work = clone(published, tmp_path / "clone")
    replays = "\n".join(  # a second module of the same namespace, for another worker
        f"@pytest.mark.castore(namespace='tests/test_m1')\ndef test_{n}(recorder):\n"
        f"    assert recorder.get_or_record_sync('key {n}', never)['key'] == {n}\n"
        for n in range(4)
    )
    (work / "tests" / "test_m1b.py").write_text(
        f"import pytest\n\ndef never():\n    raise AssertionError('called')\n\n{replays}"
    )

    small = session_in(work, "-n", "2", "tests/test_m1.py", "tests/test_m1b.py")
    assert small.returncode == 0, small.stdout + small.stderr
    assert f"{KEYS + 4} replayed, 0 missing or stale" in small.stdout
    # 8 frames, not 4.9 MB, and once: the second xdist worker finds them cut
    assert re.findall(r"fetched (\d+) objects \(0\.00\d MB\)", small.stdout) == [str(KEYS)]
    assert not list((work / "recordings" / "packs").glob("*.pack"))
    frames = cut_frames(work)
    assert len(frames) == KEYS and sum(path.stat().st_size for path in frames) < pack_bytes / 1000
    assert git(work, "status", "--porcelain", "recordings").stdout == ""  # git-ignored

    again = session_in(work, "tests/test_m1.py")  # the frames are here: nothing to fetch
    assert again.returncode == 0 and "fetched" not in again.stdout, again.stdout

    clone_store = Store(work / "recordings")  # key 0 re-recorded: its old frame is unused
    clone_store.put("tests/test_m1", "key 0", {"module": 1, "key": 0, "text": "changed"})
    collected = cli("gc", cwd=work, check=True)
    assert "removed 1 frame(s) cut from remote packs, now unused" in collected.stdout
    assert len(cut_frames(work)) == KEYS - 1

    large = session_in(work, "tests/test_m0.py")  # most of the pack: fetched whole, once
    assert large.returncode == 0, large.stdout + large.stderr
    assert fetched(large.stdout) == (1, round(pack_bytes / 1e6, 1)), large.stdout
    assert [path.stem for path in (work / "recordings" / "packs").glob("*.pack")] == [pack]

    # A frame damaged here (a flipped byte) is dropped and the pack read instead; one left
    # empty (as by a crash before the batch was flushed) is not read at all.
    flipped, emptied = cut_frames(work)[:2]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    healed = session_in(work, "tests/test_m1.py")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert not flipped.exists()
    emptied.write_bytes(b"")
    assert session_in(work, "tests/test_m1.py").returncode == 0


def test_a_damaged_frame_on_the_remote_is_refused_by_name_and_never_kept(
    published: tuple[Path, str, str],
    tmp_path: Path,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    repo, _, pack = published
    store = Store(repo / "recordings")
    entry = store.entries("tests/test_m1")["key 7"]
    _, offset, length = internals(store).blobs.packs.slot_of(entry.blob) or ("", 0, 0)
    remote = remotes.remote_files(store)
    data = bytearray(remote.read(FileKind.PACK, pack) or b"")
    data[offset + length // 2] ^= 0xFF  # inside the frame of key 7 of module 1
    remote.delete(FileKind.PACK, pack)
    remote.write(FileKind.PACK, pack, bytes(data))
    work = clone(published, tmp_path / "clone")

    run = session_in(work, "tests/test_m1.py")
    assert run.returncode == 1, run.stdout
    assert "damaged and were not kept" in run.stdout and entry.blob[:16] in run.stdout
    assert "remote origin" in run.stdout
    kept = {path.name.removesuffix(".zst") for path in cut_frames(work)}
    assert len(kept) == KEYS - 1 and entry.blob not in kept
    assert not list((work / "recordings" / "packs").glob("*.pack"))  # nor the pack


@needs_lfs
def test_a_big_pack_the_remote_lacks_comes_whole_from_git_lfs(
    tmp_path: Path,
    s3_server: str,
    s3_bucket: str,
    aws_env: dict[str, str],
    session_in: Callable[..., CommandResult],
) -> None:
    """A store in git-lfs that also names a remote, which never got the big pack (nobody
    pushed): a clone without LFS content that runs the small module asks the remote for
    the few frames it needs, finds no pack there to cut them from, and brings the pack
    whole from LFS instead, which the checkout still has."""
    from bench.lfs_server import giftless  # noqa: PLC0415 - the LFS tests' server

    repo = tmp_path / "repo"
    store = project(repo)
    pack_store(store)
    (pack,) = internals(store).blobs.packs.names()
    cli("git", "setup", cwd=repo, check=True)  # packs in git-lfs
    remotes.add_remote(store, "origin", f"s3://{s3_bucket}/rec", options={"endpoint": s3_server})
    with giftless(tmp_path / "lfs-server") as url:
        (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{url}"\n')
        commit_all(repo, "recordings in LFS, and a remote that lacks their pack")
        bare = push_to_bare(repo, tmp_path)
        work = tmp_path / "clone"
        git(tmp_path, "clone", "-q", bare.as_uri(), str(work), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        pack_file = work / "recordings" / "packs" / f"{pack}.pack"
        assert pack_file.read_bytes().startswith(b"version https://git-lfs")

        assert Store(work / "recordings").config.default_remote == "origin"

        small = session_in(work, "tests/test_m1.py")

    assert small.returncode == 0, small.stdout + small.stderr
    assert f"{KEYS} replayed, 0 missing or stale" in small.stdout
    # the pack and the zstd dictionary, both in LFS; nothing came from the remote
    assert re.search(r"fetched 2 objects \([0-9.]+ MB\) from LFS", small.stdout), small.stdout
    assert fetched(small.stdout) is None
    assert pack_file.read_bytes() == (repo / "recordings" / "packs" / f"{pack}.pack").read_bytes()
    assert cut_frames(work) == []

    # With the LFS server gone too, nothing has the pack: the run fails, naming the remote
    # that lacks it and the push that would mend it.
    again = tmp_path / "clone-without-lfs"
    git(tmp_path, "clone", "-q", bare.as_uri(), str(again), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    lost = session_in(again, "tests/test_m1.py")
    assert lost.returncode != 0
    assert "not on the remote" in lost.stdout and "castore push" in lost.stdout, lost.stdout
    (from_lfs,) = re.findall(r"could not fetch \d+ of \d+ object\(s\) from LFS: (.*)", lost.stdout)
    assert "git lfs pull" in from_lfs and from_lfs.count("Failed to fetch") == 1, from_lfs
