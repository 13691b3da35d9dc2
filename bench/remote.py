"""The remote tier and a session's cost at scale, against VCR.py and the in-memory floors.

    uv run --group bench python -m bench.remote                      # 1x and 10x (CI size)
    uv run --group bench python -m bench.remote --scales 1,10,100    # full size, about 2 h
    uv run --group bench python -m bench.remote --parts shard,upkeep --scales 10

Each scale builds the benchmark's suites (one test module per cassette, castore recorded
with default settings and packed; VCR.py's YAML cassettes; the values as msgpack) and
measures, in one run (``--parts`` picks some):

- ``module``: one test module against the full store, in a folder that holds only that
  module: castore, VCR.py (its one cassette), an in-memory floor holding that module's
  values only, and the raw floor reading that module's entries from the full store;
  wall time per run and castore's peak memory (VmHWM), interleaved rounds.
- ``suite``: the whole suite, castore against the floor holding every value in memory
  and against the raw floor (bench/raw_floor.py: castore's store read with native calls
  only, the least a verified reader of castore's format does), paired rounds (the median of
  per-round ratios).
- ``shard``: a fresh clone that runs one module, and one contiguous twentieth of the
  modules (a CI shard as pytest-split cuts it): castore's pack data on moto's S3 API
  (``git setup --remote``), castore's packs in git-lfs fetched lazily (giftless), and a
  plain-git clone of VCR.py's cassettes; wall time (clone + pytest) and bytes moved.
  The other test modules are deleted from the clone before pytest runs (as a job that
  checked out only its shard's tests), the same for all three.
- ``upkeep``: ``castore push`` (everything, to an empty bucket), ``castore pull`` (all,
  into a clone without pack data) and ``castore gc --remote``, each timed.
- ``churn``: re-record 10% of the responses, run ``castore gc``, commit and push: the
  bytes git-lfs receives and the git growth, for castore with gc's old 10% rewrite
  threshold and its new default (50%), and for VCR.py's cassettes in plain git.
- ``clients`` (100x, where the store has about twenty packs): obstore against s3fs,
  uploading and downloading the store's packs, interleaved rounds.
- ``footprint`` (1x): the corpus recorded through pytest with default settings (packed
  by the session itself), and held-out traffic (a second session recording the other
  half) against the zstd-19 + dictionary floor.

moto runs in a child process on loopback; giftless too. Results go to
``bench/results/remote.json`` (one JSON line per part as it finishes, on stdout too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import msgpack

from bench import corpus
from bench.measure import compression_floor, run_pytest
from bench.packs import commit_and_push, du, git, make_repo
from bench.raw_floor import write_raw_suite
from bench.s3_server import TEST_CREDENTIALS, moto_server, new_bucket
from bench.suites import (
    COMMON_OPTIONS,
    VCR_CONFTEST,
    Suites,
    calls_of,
    module_name,
    pytest_ini,
    vcr_document,
    write_castore,
    write_floor,
    write_raw,
    write_vcr,
)
from castore import Store
from castore._storage.store import internals

PARTS = ("module", "suite", "shard", "upkeep", "churn", "clients", "footprint")
FETCHED = re.compile(r"fetched (\d+) objects \([0-9.]+ MB\) from (LFS|remote \S+) in [0-9.]+ s")
#: The module run alone: its number in the 1x corpus (each scale has its copies after).
MODULE = 42
SHARDS = 20


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def castore_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "castore", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"castore {' '.join(args)}: {run.stderr}{run.stdout}")
    return time.perf_counter() - started, run.stdout


def pytest_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args)} in {cwd}:\n{run.stdout[-3000:]}")
    return time.perf_counter() - started, run.stdout


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def paired(mine: list[float], theirs: list[float]) -> dict[str, Any]:
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    return {
        "ratio": round(statistics.median(ratios), 3),
        "spread": [round(min(ratios), 3), round(max(ratios), 3)],
    }


# --- building ----------------------------------------------------------------------------


def suites_at(cassettes: list[corpus.Cassette], factor: int, work: Path) -> Suites:
    """The suites of one scale in ``work``, whether built yet or not."""
    scaled = corpus.scale(cassettes, factor, 0.2)
    return Suites(work, scaled, [module_name(n) for n in range(len(scaled))])


def build(cassettes: list[corpus.Cassette], factor: int, work: Path) -> Suites:
    suites = suites_at(cassettes, factor, work)
    for name, write in (
        ("castore (recorded with default settings, then castore pack)", _castore),
        ("VCR.py", write_vcr),
        ("floor", write_floor),
        ("raw floor", write_raw),
    ):
        started = time.perf_counter()
        write(suites)
        log(f"  {factor}x: wrote {name} in {time.perf_counter() - started:.0f} s")
    return suites


def _castore(suites: Suites) -> None:
    # No trained dictionary beforehand: the first pack trains one, as automatic packing
    # does after a recording session.
    write_castore(suites, level=19, train=False, pack=True)


# --- one module against the full store ------------------------------------------------


FLOOR_MODULE_CONFTEST = """from pathlib import Path

import msgpack
import pytest

VALUES = Path(__file__).resolve().parent.parent / "values.msgpack"


@pytest.fixture(scope="session")
def values():
    return msgpack.unpackb(VALUES.read_bytes(), strict_map_key=False)


@pytest.fixture
def recorded(request, values):
    return values[request.path.stem]
"""


def module_folders(suites: Suites, number: int, work: Path) -> dict[str, Path]:
    """Four folders holding only module ``number``: castore (its store is the full
    store), VCR.py (its one cassette), the floor (that module's values only) and the raw
    floor (that module's entries read from castore's full store)."""
    module = suites.modules[number]
    folders = {}
    for approach in ("castore", "vcr", "floor"):
        folder = work / f"one-{approach}"
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "tests").mkdir(parents=True)
        source = suites.suite(approach) / "tests" / f"{module}.py"
        shutil.copy(source, folder / "tests" / f"{module}.py")
        extra = f"castore_root = {suites.store}\n" if approach == "castore" else ""
        (folder / "pytest.ini").write_text(pytest_ini(approach, extra))
        folders[approach] = folder
    folders["raw"] = write_raw_suite(
        work / "one-raw",
        suites.store,
        {module: calls_of(suites.cassettes[number])},
        pytest_ini("raw"),
    )
    cassette = folders["vcr"] / "tests" / "cassettes" / module / "test_replay.yaml"
    cassette.parent.mkdir(parents=True)
    shutil.copy(suites.cassette(number), cassette)
    (folders["vcr"] / "tests" / "conftest.py").write_text(VCR_CONFTEST)
    (folders["floor"] / "tests" / "conftest.py").write_text(FLOOR_MODULE_CONFTEST)
    values = {item.key: item.response for item in suites.cassettes[number].interactions}
    (folders["floor"] / "values.msgpack").write_bytes(msgpack.packb({module: values}))
    return folders


def interleaved(folders: dict[str, Path], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Each approach's runs, in rounds whose order rotates, after one untimed run each."""
    for folder in folders.values():
        run_pytest(folder)  # compile the module, build castore's pack table: untimed
    runs: dict[str, dict[str, list[float]]] = {name: {"wall": [], "rss": []} for name in folders}
    names = list(folders)
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            wall, _, rss = run_pytest(folders[name])
            runs[name]["wall"].append(wall)
            runs[name]["rss"].append(rss)
    return runs


def one_module(suites: Suites, work: Path, rounds: int) -> dict[str, Any]:
    number = MODULE
    folders = module_folders(suites, number, work)
    runs = interleaved(folders, rounds)
    return {
        "module": suites.modules[number],
        "lookups": len(suites.cassettes[number].interactions),
        "wall_s": {name: round(median(run["wall"]), 3) for name, run in runs.items()},
        "peak_mib": {name: round(median(run["rss"]) / 2**20, 1) for name, run in runs.items()},
        "castore_over_vcr": paired(runs["castore"]["wall"], runs["vcr"]["wall"]),
        "castore_over_floor": paired(runs["castore"]["wall"], runs["floor"]["wall"]),
        "raw_over_floor": paired(runs["raw"]["wall"], runs["floor"]["wall"]),
    }


def whole_suite(suites: Suites, rounds: int) -> dict[str, Any]:
    if not suites.suite("raw").exists():  # a kept build from before the raw floor
        write_raw(suites)
    folders = {name: suites.suite(name) for name in ("castore", "floor", "raw")}
    runs = interleaved(folders, rounds)
    return {
        "modules": len(suites.modules),
        "wall_s": {name: round(median(run["wall"]), 2) for name, run in runs.items()},
        "spread_s": {
            name: [round(min(run["wall"]), 2), round(max(run["wall"]), 2)]
            for name, run in runs.items()
        },
        "peak_mib": {name: round(median(run["rss"]) / 2**20, 1) for name, run in runs.items()},
        "castore_over_floor": paired(runs["castore"]["wall"], runs["floor"]["wall"]),
        "raw_over_floor": paired(runs["raw"]["wall"], runs["floor"]["wall"]),
        "castore_over_raw": paired(runs["castore"]["wall"], runs["raw"]["wall"]),
    }


# --- repositories: castore on S3, castore in LFS, VCR.py in git --------------------------


def _suite_repo(suites: Suites, approach: str, path: Path, remote: Path) -> None:
    """A repository of an approach's suite folder (tests, pytest.ini, fixtures)."""
    make_repo(path, remote)
    for item in suites.suite(approach).iterdir():
        target = path / item.name
        if item.is_dir():
            shutil.copytree(item, target, ignore=shutil.ignore_patterns(".castore", "__pycache__"))
        elif item.name != ".peak-rss":
            shutil.copy(item, target)


def remote_repo(suites: Suites, work: Path, endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    """castore with pack data on moto's S3: ``remote add``, ``git setup --remote``,
    ``push`` (timed: everything, to an empty bucket), commit and push to git."""
    repo, bare = work / "s3-repo", work / "s3.git"
    _suite_repo(suites, "castore", repo, bare)
    bucket = new_bucket(endpoint)
    store = repo / "store"
    castore_cli(repo, "--root", str(store), "remote", "add", "origin", f"s3://{bucket}/store",
                "--endpoint", endpoint, env=env)  # fmt: skip
    castore_cli(repo, "--root", str(store), "git", "setup", "--no-lfs", "--remote", "origin")
    push_s, output = castore_cli(repo, "--root", str(store), "push", "--json", env=env)
    pushed = json.loads(output)
    commit_and_push(repo, "castore suite, pack data on the remote")
    git(bare, "gc", "-q", "--aggressive")
    return {"repo": repo, "bare": bare, "bucket": bucket, "push_s": push_s, "pushed": pushed}


def lfs_repo(suites: Suites, work: Path, lfs_url: str) -> dict[str, Any]:
    repo, bare = work / "lfs-repo", work / "lfs.git"
    _suite_repo(suites, "castore", repo, bare)
    castore_cli(repo, "--root", str(repo / "store"), "git", "setup")
    (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{lfs_url}"\n')
    commit_and_push(repo, "castore suite, packs in git-lfs")
    git(bare, "gc", "-q", "--aggressive")
    return {"repo": repo, "bare": bare}


def vcr_repo(suites: Suites, work: Path) -> dict[str, Any]:
    repo, bare = work / "vcr-repo", work / "vcr.git"
    _suite_repo(suites, "vcr", repo, bare)
    commit_and_push(repo, "VCR.py suite")
    git(bare, "gc", "-q", "--aggressive")
    return {"repo": repo, "bare": bare}


def _clone(bare: Path, target: Path, env: dict[str, str] | None = None) -> float:
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    run = subprocess.run(
        ["git", "clone", "-q", bare.as_uri(), str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(run.stderr)
    return time.perf_counter() - started


def shard_run(
    bare: Path, target: Path, selection: list[str], env: dict[str, str], clone_env: dict[str, str]
) -> dict[str, Any]:
    """A fresh clone that runs ``selection``: wall time and bytes moved (git's and what
    castore fetched), and how many objects castore fetched."""
    clone_s = _clone(bare, target, clone_env)
    git_bytes = du(target / ".git")
    on_disk = _fetchable_bytes(target)
    # The shard's modules alone: pytest walks a test file's whole folder once per file
    # named on its command line (59,700 files at 100x, times each one named), and a CI
    # shard collecting everything to keep a twentieth costs all three suites the same.
    chosen = {Path(path).name for path in selection}
    for module in (target / "tests").glob("test_*.py"):
        if module.name not in chosen:
            module.unlink()
    pytest_s, output = pytest_in(target, env=env)
    fetched = [(int(m[1]), m[2]) for m in FETCHED.finditer(output)]
    result: dict[str, Any] = {
        "clone_s": round(clone_s, 2),
        "pytest_s": round(pytest_s, 2),
        "wall_s": round(clone_s + pytest_s, 2),
        "git_bytes": git_bytes,
        "fetched_objects": sum(item[0] for item in fetched),
        # Exact, from the files themselves: the report line rounds to 0.1 MB.
        "fetched_bytes": _fetchable_bytes(target) - on_disk,
        "fetched_from": sorted({item[1] for item in fetched}),
    }
    result["bytes_moved"] = result["git_bytes"] + result["fetched_bytes"]
    shutil.rmtree(target, ignore_errors=True)
    return result


def _fetchable_bytes(clone: Path) -> int:
    """Bytes of the store's packs, loose blobs and cut frames that hold content (not LFS
    pointers): what a lazy fetch brings, from a remote or from LFS (whose own copy in
    .git/lfs is the same bytes, not counted twice)."""
    total = 0
    store = clone / "store"
    cut = store.glob(".castore/cut-frames/*/blobs/*/*.zst")  # frames cut from remote packs
    for path in [*store.glob("packs/*.pack"), *store.glob("blobs/*/*.zst"), *cut]:
        size = path.stat().st_size
        if size >= 1024 or not path.read_bytes().startswith(b"version https://git-lfs"):
            total += size
    return total


def shards(
    suites: Suites, repos: dict[str, dict[str, Any]], work: Path, env: dict[str, str]
) -> dict[str, Any]:
    count = len(suites.modules)
    chunk = max(1, count // SHARDS)
    start = (count // SHARDS) * 7  # the eighth of twenty
    selections = {
        "one module": [f"tests/{suites.modules[MODULE]}.py"],
        "one shard of 20": [
            f"tests/{module}.py" for module in suites.modules[start : start + chunk]
        ],
    }
    results: dict[str, Any] = {}
    for label, selection in selections.items():
        results[label] = {
            "modules": len(selection),
            "castore_s3": shard_run(repos["s3"]["bare"], work / "clone-s3", selection, env, env),
            "castore_lfs": shard_run(
                repos["lfs"]["bare"],
                work / "clone-lfs",
                selection,
                env,
                {**env, "GIT_LFS_SKIP_SMUDGE": "1"},
            ),
            "vcr_git": shard_run(repos["vcr"]["bare"], work / "clone-vcr", selection, env, env),
        }
        log(f"    shard {label}: {json.dumps(results[label])}")
    return results


def upkeep(repos: dict[str, dict[str, Any]], work: Path, env: dict[str, str]) -> dict[str, Any]:
    """push (from the remote repo's build), pull of everything into a clone without pack
    data, and gc --remote over every ref, nothing to delete."""
    clone = work / "clone-pull"
    _clone(repos["s3"]["bare"], clone)
    store = clone / "store"
    pull_s, output = castore_cli(clone, "--root", str(store), "pull", "--json", env=env)
    pulled = json.loads(output)
    gc_s, output = castore_cli(
        repos["s3"]["repo"], "--root", str(repos["s3"]["repo"] / "store"), "gc", "--remote",
        "origin", "--grace", "0", "--json", env=env,
    )  # fmt: skip
    collected = json.loads(output)
    shutil.rmtree(clone, ignore_errors=True)
    pushed = repos["s3"]["pushed"]
    return {
        "push_s": round(repos["s3"]["push_s"], 1),
        "push_objects": pushed["objects"],
        "push_mb": round(pushed["bytes"] / 1e6, 1),
        "pull_s": round(pull_s, 1),
        "pull_objects": pulled["objects"],
        "pull_mb": round(pulled["bytes"] / 1e6, 1),
        "gc_remote_s": round(gc_s, 1),
        "gc_remote_objects": collected["objects"],
        "gc_remote_deleted": len(collected["deleted"]),
    }


# --- churn: re-recording 10% ------------------------------------------------------------


def churn(
    suites: Suites, work: Path, lfs_url_for: Callable[[Path], AbstractContextManager[str]]
) -> dict[str, Any]:
    """Re-record the same 10% of responses in three repositories, each pushed first:
    castore with ``gc --max-unused 10%`` (the old default), castore with today's default,
    and VCR.py's cassettes; LFS upload and git growth of each."""
    rng = random.Random(2510)
    items = [
        (number, position)
        for number, cassette in enumerate(suites.cassettes)
        for position in range(len(cassette.interactions))
    ]
    chosen = rng.sample(items, max(1, len(items) // 10))
    results: dict[str, Any] = {"responses": len(chosen)}
    for label, max_unused in (
        ("castore, gc --max-unused 10% (before)", "10%"),
        ("castore, default gc (after)", None),
    ):
        folder = work / f"churn-{'before' if max_unused else 'after'}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        with ExitStack() as stack:
            lfs_url = stack.enter_context(lfs_url_for(folder / "lfs"))
            repo, bare = folder / "repo", folder / "repo.git"
            _suite_repo(suites, "castore", repo, bare)
            castore_cli(repo, "--root", str(repo / "store"), "git", "setup")
            (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{lfs_url}"\n')
            commit_and_push(repo, "castore suite")
            git(bare, "gc", "-q")  # as VCR.py's below: packed, re-recorded files delta'd
            lfs_before, git_before = du(folder / "lfs" / "objects"), du(bare)
            store = Store(repo / "store")
            with store.batch():
                for number, position in chosen:
                    item = suites.cassettes[number].interactions[position]
                    new = corpus.rerecorded(item.response, f"churn/{number}/{position}")
                    store.put(f"tests/{suites.modules[number]}", item.key, new)
            # What a session that re-records does by itself (castore_auto_pack), then gc.
            castore_cli(repo, "--root", str(repo / "store"), "pack")
            gc_args = ["gc"] + (["--max-unused", max_unused] if max_unused else [])
            castore_cli(repo, "--root", str(repo / "store"), *gc_args)
            commit_and_push(repo, "re-record 10%")
            git(bare, "gc", "-q")
            results[label] = {
                "lfs_upload_bytes": du(folder / "lfs" / "objects") - lfs_before,
                "git_growth_bytes": du(bare) - git_before,
            }
        shutil.rmtree(folder, ignore_errors=True)
    folder = work / "churn-vcr"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    repo, bare = folder / "repo", folder / "repo.git"
    _suite_repo(suites, "vcr", repo, bare)
    commit_and_push(repo, "VCR.py suite")
    git(bare, "gc", "-q")
    before = du(bare)
    touched: dict[int, list[corpus.Interaction]] = {}
    for number, position in chosen:
        interactions = touched.setdefault(number, list(suites.cassettes[number].interactions))
        item = interactions[position]
        new = corpus.rerecorded(item.response, f"churn/{number}/{position}")
        interactions[position] = corpus.Interaction(item.request, new, item.key)
    for number, interactions in touched.items():
        path = repo / "tests" / "cassettes" / suites.modules[number] / "test_replay.yaml"
        path.write_text(vcr_document(corpus.Cassette(suites.cassettes[number].name, interactions)))
    commit_and_push(repo, "re-record 10%")
    git(bare, "gc", "-q")
    results["vcr"] = {"git_growth_bytes": du(bare) - before}
    shutil.rmtree(folder, ignore_errors=True)
    return results


# --- obstore against s3fs ------------------------------------------------------------------


def clients(suites: Suites, endpoint: str, rounds: int) -> dict[str, Any]:
    """Upload, then download, every pack of the store: obstore as castore drives it
    (``copy_files``, 16 in flight) against s3fs (``pipe`` and ``cat`` of many paths, its
    own concurrency), each into a fresh bucket, in alternating rounds."""
    import fsspec  # noqa: PLC0415 - the bench group's
    import s3fs  # noqa: PLC0415, F401

    from castore._storage.files.folder import FolderFiles  # noqa: PLC0415
    from castore._storage.files.object_store import ObjectStoreFiles  # noqa: PLC0415
    from castore._storage.files.seam import FileHandle  # noqa: PLC0415
    from castore._storage.files.transfer import copy_files  # noqa: PLC0415
    from castore._storage.layout import FileKind, relative_path  # noqa: PLC0415

    local = FolderFiles(suites.store)
    handles = [FileHandle(FileKind.PACK, info.name) for info in local.listing(FileKind.PACK)]
    total = sum(info.size for info in local.listing(FileKind.PACK))
    times: dict[str, dict[str, list[float]]] = {
        name: {"up": [], "down": []} for name in ("obstore", "s3fs")
    }
    for number in range(rounds):
        order = ["obstore", "s3fs"] if number % 2 == 0 else ["s3fs", "obstore"]
        for name in order:
            bucket = new_bucket(endpoint)
            if name == "obstore":
                remote = ObjectStoreFiles("bench", f"s3://{bucket}", {"endpoint": endpoint})
                started = time.perf_counter()
                copy_files(local, remote, handles)
                times[name]["up"].append(time.perf_counter() - started)
                sink = tempfile.mkdtemp(prefix="castore-clients-")
                started = time.perf_counter()
                copy_files(remote, FolderFiles(Path(sink)), handles)
                times[name]["down"].append(time.perf_counter() - started)
                shutil.rmtree(sink)
            else:
                fs = fsspec.filesystem(
                    "s3", client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
                )
                paths = {
                    f"{bucket}/{relative_path(h.kind, h.name)}": local.read(h.kind, h.name)
                    for h in handles
                }
                started = time.perf_counter()
                fs.pipe(paths)
                times[name]["up"].append(time.perf_counter() - started)
                started = time.perf_counter()
                fs.cat(list(paths))
                times[name]["down"].append(time.perf_counter() - started)
    return {
        "packs": len(handles),
        "bytes": total,
        **{
            f"{name}_{way}_s": round(median(times[name][way]), 2)
            for name in times
            for way in ("up", "down")
        },
        **{
            f"{name}_{way}_mb_s": round(total / 1e6 / median(times[name][way]), 1)
            for name in times
            for way in ("up", "down")
        },
    }


# --- footprint of default settings, held-out traffic ---------------------------------------


RECORD_MODULE = """import msgpack
from pathlib import Path

FILE = Path(__file__).parent / "{module}.msgpack"
VALUES = msgpack.unpackb(FILE.read_bytes(), strict_map_key=False)


def test_record(recorder):
    for key, value in VALUES.items():
        assert recorder.get_or_record_sync(key, lambda value=value: value) == value
"""


def footprint(cassettes: list[corpus.Cassette], work: Path) -> dict[str, Any]:
    """Record the corpus through pytest with default settings, in two sessions: the first
    half (automatic packing trains the dictionary on it), then the second half (held-out
    traffic, packed with that dictionary). Each half's packs against its own floor."""
    folder = work / "footprint"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text(
        f"[pytest]\naddopts = {COMMON_OPTIONS} -p no:recording\ncastore_root = store\n"
    )
    halves = [cassettes[0::2], cassettes[1::2]]
    results: dict[str, Any] = {}
    for half, group in enumerate(halves):
        for number, cassette in enumerate(group):
            module = f"test_h{half}_{number:04d}"
            values = {item.key: item.response for item in cassette.interactions}
            (folder / "tests" / f"{module}.msgpack").write_bytes(msgpack.packb(values))
            (folder / "tests" / f"{module}.py").write_text(RECORD_MODULE.format(module=module))
        before = {path.name for path in (folder / "store" / "packs").glob("*.pack")}
        _, output = pytest_in(folder, "tests/", "-k", f"h{half}_", env={"RECORD_FIXTURES": "true"})
        packed = re.search(r"packed ([0-9,]+) blobs into (\d+) pack", output)
        store = Store(folder / "store")
        new_packs = [
            path for path in (folder / "store" / "packs").glob("*.pack") if path.name not in before
        ]
        namespaces = [f"tests/test_h{half}_{number:04d}" for number in range(len(group))]
        blobs = {entry.blob for ns in namespaces for entry in store.entries(ns).values()}
        raw = unique_values_of(store, blobs)
        floor = compression_floor(raw, cover=(2048, 8))
        pack_bytes = sum(path.stat().st_size for path in new_packs)
        loose = list((folder / "store" / "blobs").rglob("*.zst"))
        loose_bytes = sum(path.stat().st_size for path in loose)
        label = "first session (trains the dictionary)" if half == 0 else "held-out session"
        dictionary = loose_bytes if half == 0 else 0
        results[label] = {
            "values": len(blobs),
            "session_packed": packed.group(0) if packed else None,
            "packs": len(new_packs),
            "pack_bytes": pack_bytes,
            "loose_files_left": len(loose),
            "floor_bytes": floor["bytes"],
            "footprint_over_floor": round((pack_bytes + dictionary) / floor["bytes"], 3),
        }
    shutil.rmtree(folder, ignore_errors=True)
    return results


def unique_values_of(store: Store, blobs: set[str]) -> list[bytes]:
    reader = internals(store).reader
    return [reader.read_packed(blob) for blob in sorted(blobs)]


# --- the run --------------------------------------------------------------------------------


def run_scale(
    cassettes: list[corpus.Cassette],
    factor: int,
    args: argparse.Namespace,
    endpoint: str,
    giftless_at: Callable[[Path], AbstractContextManager[str]],
    emit: Callable[[dict[str, Any]], None],
) -> None:
    if args.reuse is not None:  # a kept build of this scale (--keep, or a run cut short)
        work = args.reuse
        suites = suites_at(cassettes, factor, work)
        for leftover in work.glob("churn-*"):
            shutil.rmtree(leftover)
        log(f"{factor}x: reusing the suites built in {work}")
    else:
        work = Path(tempfile.mkdtemp(prefix=f"castore-remote-{factor}x-"))
        log(f"{factor}x: building in {work}")
        suites = build(cassettes, factor, work)
    env = dict(TEST_CREDENTIALS)
    parts = set(args.parts.split(","))
    rounds = args.rounds if factor < 100 else max(3, args.rounds // 2)
    # Byte counts first (churn, then the shard's and upkeep's repositories), timings of
    # the suite after: a long run cut short still has the figures that cost the most.
    if "churn" in parts:
        emit({"scale": factor, "part": "churn", **churn(suites, work, giftless_at)})
    if parts & {"shard", "upkeep"}:
        with giftless_at(work / "lfs") as lfs_url:
            repos = {
                "s3": remote_repo(suites, work, endpoint, env),
                "lfs": lfs_repo(suites, work, lfs_url),
                "vcr": vcr_repo(suites, work),
            }
            if "upkeep" in parts:
                emit({"scale": factor, "part": "upkeep", **upkeep(repos, work, env)})
            if "shard" in parts:
                emit({"scale": factor, "part": "shard", **shards(suites, repos, work, env)})
    if "module" in parts:
        emit({"scale": factor, "part": "module", **one_module(suites, work, rounds)})
    if "suite" in parts:
        emit({"scale": factor, "part": "suite", **whole_suite(suites, 5 if factor < 100 else 3)})
    if "footprint" in parts and factor == 1:
        emit({"scale": factor, "part": "footprint", **footprint(cassettes, work)})
    if "clients" in parts and factor >= 100:
        emit({"scale": factor, "part": "clients", **clients(suites, endpoint, 3)})
    if not args.keep and args.reuse is None:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the one-module runs")
    parser.add_argument("--output", type=Path, default=Path("bench/results/remote.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument(
        "--reuse", type=Path, help="the work folder of a kept build (one scale): skip building"
    )
    args = parser.parse_args()
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if shutil.which("git-lfs") is None and {"shard", "churn"} & set(args.parts.split(",")):
        sys.exit("bench.remote: the shard and churn parts need git-lfs (apt-get install git-lfs)")
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    os.environ.update(TEST_CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "CASTORE_REMOTE", "RECORD_FIXTURES", "CI"):
        os.environ.pop(name, None)
    from bench.lfs_server import giftless  # noqa: PLC0415

    subprocess.run(["git", "lfs", "install", "--skip-repo"], check=False, capture_output=True)
    cassettes = corpus.load()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, Any]] = []

    def emit(result: dict[str, Any]) -> None:
        lines.append(result)
        print(json.dumps(result), flush=True)
        args.output.write_text(json.dumps(lines, indent=2) + "\n")

    started = time.perf_counter()
    with moto_server() as endpoint:
        for factor in (int(scale) for scale in args.scales.split(",")):
            run_scale(cassettes, factor, args, endpoint, giftless, emit)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {args.output}")


if __name__ == "__main__":
    main()
