"""Packs in git-lfs against a real LFS server (giftless, on loopback): push, a fresh clone
without LFS content, and lazy fetch of only what the selected tests need."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    CommandResult,
    cli,
    commit_all,
    git,
    needs_lfs,
    push_to_bare,
    recorded_project,
    run,
    use_git_home,
)

from bench.lfs_server import giftless, stored_objects
from castore import Store
from castore._storage.files.pointers import is_pointer_file
from castore._storage.store import internals

pytestmark = [needs_lfs, pytest.mark.usefixtures("isolated_git")]

MODULES = 6
KEYS = 40


def answer(module: int, key: int) -> dict[str, object]:
    # Incompressible-ish text so that packs split at the small test target size.
    text = " ".join(f"w{(module * 7919 + key * 104729 + n * 31) % 100003}" for n in range(400))
    return {"module": module, "key": key, "text": text}


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, git_home: Path
) -> Iterator[tuple[Path, str, Path]]:
    """A repository whose packed store is pushed to a bare remote (git) and giftless (LFS).

    Made once per module (per xdist worker), as building it takes seconds: the tests only
    read it and clone it into their own folders."""
    tmp_path = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as patch:
        use_git_home(git_home, patch)
        repo = tmp_path / "repo"
        recorded_project(repo, MODULES, KEYS, answer)
        cli("pack", "--target-size", "8KiB", cwd=repo, check=True)
        cli("git", "setup", cwd=repo, check=True)
        objects = tmp_path / "lfs-server"
        with giftless(objects) as url:
            # Committed, so that a fresh clone finds the LFS server with no set-up step.
            (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{url}"\n')
            commit_all(repo, "packed recordings")
            remote = push_to_bare(repo, tmp_path)
            yield repo, remote.as_uri(), objects


def packs_needed(store_root: Path, namespaces: list[str]) -> set[str]:
    store = Store(store_root)
    packs = internals(store).blobs.packs
    assert packs is not None
    return {
        name
        for namespace in namespaces
        for entry in store.entries(namespace).values()
        if (name := packs.pack_of(entry.blob))
    }


def test_packs_push_to_the_lfs_server_and_indexes_stay_text(
    published: tuple[Path, str, Path],
) -> None:
    repo, _, objects = published
    tracked = set(git(repo, "lfs", "ls-files", "--name-only").stdout.split())
    packs = sorted((repo / "recordings" / "packs").glob("*.pack"))
    assert len(packs) >= 4  # the small target splits the store
    dictionary_files = list((repo / "recordings" / "blobs").rglob("*.zst"))
    assert tracked == {path.relative_to(repo).as_posix() for path in [*packs, *dictionary_files]}
    assert len(stored_objects(objects)) == len(tracked)
    for index in (repo / "recordings" / "packs").glob("*.idx"):
        assert index.relative_to(repo).as_posix() not in tracked
        assert git(repo, "show", f"HEAD:{index.relative_to(repo).as_posix()}").stdout.startswith(
            "castore-pack-index 1"
        )


def test_a_run_of_one_module_fetches_only_its_packs_and_passes(
    published: tuple[Path, str, Path],
    tmp_path: Path,
    session_in: Callable[..., CommandResult],
) -> None:
    _, remote, _ = published
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    root = clone / "recordings"
    needed = packs_needed(root, ["tests/test_m4"])
    all_packs = {path.stem for path in (root / "packs").glob("*.pack")}
    assert needed < all_packs

    run = session_in(clone, "tests/test_m4.py")
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"fetched (\d+) objects \(([0-9.]+) MB\) from LFS in [0-9.]+ s", run.stdout)
    assert found, run.stdout
    assert int(found.group(1)) == len(needed) + 1  # its packs and the dictionary
    assert f"{KEYS} replayed, 0 missing or stale, 0 recorded" in run.stdout
    for pack in root.glob("packs/*.pack"):
        is_pointer = pack.read_bytes().startswith(b"version https://git-lfs")
        assert is_pointer == (pack.stem not in needed), pack.name


RUNTIME_MODULE = """
def never():
    raise AssertionError("the real API was called during replay")

def test_runtime(recorder_factory):
    recorder = recorder_factory("tests/test_m2")  # a namespace collection cannot see
    for key in range({keys}):
        assert recorder.get_or_record_sync(f"key {{key}}", never)["module"] == 2
"""


def test_a_namespace_chosen_at_run_time_is_fetched_when_its_recorder_is_made(
    published: tuple[Path, str, Path],
    tmp_path: Path,
    session_in: Callable[..., CommandResult],
) -> None:
    _, remote, _ = published
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    (clone / "tests" / "test_runtime.py").write_text(RUNTIME_MODULE.format(keys=KEYS))
    root = clone / "recordings"
    needed = packs_needed(root, ["tests/test_m2"])

    run = session_in(clone, "tests/test_runtime.py")
    assert run.returncode == 0, run.stdout + run.stderr
    # The dictionary at collection, then test_m2's packs in one fetch when the recorder
    # is made: the report adds them up on one line.
    found = re.search(r"fetched (\d+) objects", run.stdout)
    assert found and int(found.group(1)) == len(needed) + 1, run.stdout
    assert f"{KEYS} replayed, 0 missing or stale" in run.stdout
    for pack in root.glob("packs/*.pack"):
        is_pointer = pack.read_bytes().startswith(b"version https://git-lfs")
        assert is_pointer == (pack.stem not in needed), pack.name


def test_xdist_workers_fetch_each_object_once(
    published: tuple[Path, str, Path],
    tmp_path: Path,
    session_in: Callable[..., CommandResult],
) -> None:
    _, remote, _ = published
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    needed = packs_needed(clone / "recordings", [f"tests/test_m{n}" for n in range(MODULES)])
    run = session_in(clone, "-n", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    counts = [int(n) for n in re.findall(r"fetched (\d+) objects", run.stdout)]
    assert counts == [len(needed) + 1], run.stdout
    assert f"{MODULES * KEYS} replayed" in run.stdout


def test_a_full_clone_with_lfs_replays_the_whole_suite(
    published: tuple[Path, str, Path],
    tmp_path: Path,
    session_in: Callable[..., CommandResult],
) -> None:
    _, remote, _ = published
    clone = tmp_path / "full"
    git(tmp_path, "clone", "-q", remote, str(clone))
    assert not any(
        pack.read_bytes().startswith(b"version https://git-lfs")
        for pack in (clone / "recordings" / "packs").glob("*.pack")
    )
    run = session_in(clone)
    assert run.returncode == 0, run.stdout
    assert "from LFS" not in run.stdout
    assert f"{MODULES * KEYS} replayed" in run.stdout


def test_a_clone_that_excludes_packs_by_lfs_fetchexclude_fetches_them_lazily(
    published: tuple[Path, str, Path],
    tmp_path: Path,
    session_in: Callable[..., CommandResult],
) -> None:
    _, remote, _ = published
    clone = tmp_path / "excluding"
    git(tmp_path, "clone", "-q", "-c", "lfs.fetchexclude=recordings/packs/*", remote, str(clone))
    root = clone / "recordings"
    assert all(
        pack.read_bytes().startswith(b"version https://git-lfs")
        for pack in root.glob("packs/*.pack")
    )
    needed = packs_needed(root, ["tests/test_m1", "tests/test_m2"])
    run = session_in(clone, "tests/test_m1.py", "tests/test_m2.py")
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"fetched (\d+) objects", run.stdout)
    assert found, run.stdout
    assert int(found.group(1)) == len(needed)  # the dictionary was not excluded


def test_verify_in_a_clone_without_lfs_content_groups_the_pointers_and_names_one_command(
    published: tuple[Path, str, Path], tmp_path: Path
) -> None:
    """Issue 27, item 8: verify printed the same pack-pointer line once per blob in the
    pack and counted each as a fault. Now each pointer file is one line and one fault,
    and the command it prints downloads them, also past an lfs.fetchexclude."""
    _, remote, _ = published
    for name, clone_options, env in (
        ("lazy", [], {"GIT_LFS_SKIP_SMUDGE": "1"}),  # packs and the dictionary are pointers
        ("excluding", ["-c", "lfs.fetchexclude=recordings/packs/*"], None),  # packs only
    ):
        clone = tmp_path / name
        git(tmp_path, "clone", "-q", *clone_options, remote, str(clone), env=env)
        root = clone / "recordings"
        blobs = list(Store(root).blobs())
        held = Counter(blob.path for blob in blobs)
        pointers = sorted(path for path in held if is_pointer_file(path))
        assert len(pointers) == len(list(root.glob("packs/*.pack"))) + (name == "lazy")

        report = cli("verify", cwd=clone)

        assert report.returncode == 1, report.stdout
        lines = report.stdout.splitlines()
        listed = [line for line in lines if line.startswith("lfs-pointer")]
        assert [line.split()[1].rstrip(":") for line in listed] == [str(p) for p in pointers]
        for line, path in zip(listed, pointers, strict=True):
            many = f" holding {held[path]} blobs" if held[path] > 1 else ""
            assert line.endswith(f": a git-lfs pointer{many}, not downloaded"), line
        unchecked = sum(held[path] for path in pointers)
        assert lines[-1] == (
            f"checked {len(blobs) - unchecked} of {len(blobs)} blobs ({unchecked} not "
            f"downloaded from git-lfs) and {MODULES * KEYS} entries: {len(pointers)} fault(s)"
        )
        (command,) = [line.strip() for line in lines if line.startswith("    git lfs pull")]
        assert command == 'git lfs pull --include="recordings/**" --exclude=""'
        assert "castore_lfs_fetch" in report.stdout
        as_json = json.loads(cli("verify", "--json", cwd=clone).stdout)
        assert [fault["blobs"] for fault in as_json["faults"]] == [held[p] for p in pointers]
        assert as_json["lfs_pull"] == command

        run("bash", "-c", command, cwd=clone)

        healed = cli("verify", cwd=clone)
        assert healed.returncode == 0, healed.stdout
        assert (
            healed.stdout == f"checked {len(blobs)} of {len(blobs)} blobs and "
            f"{MODULES * KEYS} entries: 0 fault(s)\n"
        )
