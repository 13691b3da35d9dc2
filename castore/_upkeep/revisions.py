"""A store as it was at a git revision, read from git's objects without a checkout.

``castore diff`` compares indexes first and reads values only for entries whose digest
changed, so a revision is materialized sparsely: the small files (``castore.json``,
indexes, pack indexes) into a private temporary directory at once, and a blob or a pack
only when a value it holds is asked for (loose blobs into memory, behind a read-only
backend on the blob seam; packs into the directory). Files come from one ``git cat-file
--batch`` per round; git-lfs pointers are resolved from the repository's local LFS
objects, and those missing are downloaded in one ``git lfs fetch --include=…`` per round
(git-lfs's batch API), not one request per file. The store is then read by the same code
and checks as any other (digests included).

Only regular files are taken from the tree: a symlink or submodule committed under the
store is skipped, so a hostile revision cannot make castore read outside it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Final

from castore._storage.blobs.backend import BlobBackend, BlobFile
from castore._storage.blobs.lfs import include_chunks, is_lfs_pointer
from castore._storage.blobs.packed import PackedBlobs
from castore._storage.blobs.packfile import parse_index as parse_pack_index
from castore._storage.blobs.wrappers import LayeredBlobs
from castore._storage.core import DEFAULT_MAX_VALUE_BYTES, StoreCore
from castore._storage.index import Entry
from castore._storage.layout import (
    BLOB_SUFFIX,
    BLOBS_DIR,
    CONFIG_NAME,
    INDEX_DIR,
    PACK_INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS_DIR,
)
from castore._storage.store import Store, internals
from castore._upkeep.git import git, git_bytes
from castore.errors import CastoreError, GitError

#: git's mode for a regular file (and an executable one): nothing else is read.
_REGULAR_MODES: Final = frozenset({"100644", "100755"})


class RevisionStore:
    """The store under ``store_path`` (relative to the repository's top) at ``revision``."""

    def __init__(self, repo: Path, revision: str, store_path: str, workdir: Path) -> None:
        self.repo = repo
        self.revision = revision
        self.commit = _resolve(repo, revision)
        self._prefix = store_path.strip("/")
        self._root = workdir
        self._files = self._list_tree()
        self._present: set[str] = set()
        self._loose = _GitObjectBlobs(workdir)
        self._pack_of: dict[str, str] | None = None
        self._materialize([name for name in self._files if _is_small_file(name)])
        self._core = StoreCore(
            workdir,
            max_value_bytes=DEFAULT_MAX_VALUE_BYTES,
            backend=LayeredBlobs(self._loose, PackedBlobs(workdir)),
        )
        self._materialize(self._files_holding(self._core.config.dictionaries.values()))

    @property
    def label(self) -> str:
        return f"{self.revision} ({self.commit[:10]})"

    def namespaces(self) -> dict[str, Mapping[str, Entry]]:
        with self._named_errors():
            indexes = self._core.indexes
            return {name: indexes.cached(name) for name in indexes.namespaces()}

    def prepare(self, digests: Iterable[str]) -> None:
        """Bring in every blob or pack that holds one of ``digests``, in one round."""
        self._materialize(self._files_holding(digests))

    def read_value(self, digest: str) -> Any:
        self.prepare([digest])
        with self._named_errors():
            return self._core.blobs.read_value(digest)

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """A castore error names the file as git does (``HEAD~1:tests/fixtures/castore/
        index/x.json``), not as the temporary copy it was read from."""
        try:
            yield
        except CastoreError as error:
            where = f"{self.revision}:{self._prefix}" if self._prefix else f"{self.revision}:"
            message = str(error).replace(str(self._root), where.rstrip("/"))
            raise GitError(f"at {self.label}: {message}") from None

    # --- reading git ------------------------------------------------------------------

    def _list_tree(self) -> dict[str, str]:
        """The store's regular files at the commit: path in the store -> git blob id."""
        spec = f"{self.commit}:{self._prefix}" if self._prefix else self.commit
        try:
            listing = git_bytes(self.repo, "ls-tree", "-r", "-z", spec)
        except GitError:  # the store did not exist at that revision
            return {}
        files: dict[str, str] = {}
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != "blob" or mode not in _REGULAR_MODES or not _safe_relative(path):
                continue  # symlinks, submodules, odd names: never followed or written
            files[path] = sha
        return files

    def _materialize(self, names: list[str]) -> None:
        names = [name for name in dict.fromkeys(names) if name not in self._present]
        if not names:
            return
        contents = _cat_files(self.repo, [self._files[name] for name in names])
        pointers: dict[str, bytes] = {}
        for name, data in zip(names, contents, strict=True):
            if is_lfs_pointer(data):
                pointers[name] = data
            else:
                self._keep(name, data)
        if pointers:
            in_repo = {self._in_repo(name): name for name in pointers}
            fetched = _lfs_contents(
                self.repo, self.commit, {self._in_repo(n): d for n, d in pointers.items()}
            )
            for path, data in fetched:
                self._keep(in_repo[path], data)

    def _in_repo(self, name: str) -> str:
        return f"{self._prefix}/{name}" if self._prefix else name

    def _keep(self, name: str, data: bytes) -> None:
        """A loose blob's frame stays in memory (thousands of them, read once); other
        files (indexes, packs) are written where the store's readers look for them."""
        self._present.add(name)
        if name.startswith(f"{BLOBS_DIR}/") and name.endswith(BLOB_SUFFIX):
            self._loose.frames[PurePosixPath(name).name.removesuffix(BLOB_SUFFIX)] = data
            return
        target = self._root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def _packs(self) -> dict[str, str]:
        """Blob digest -> the pack holding it, from the pack indexes (no pack read)."""
        if self._pack_of is None:
            self._pack_of = {}
            for name in sorted(self._files):
                if name.startswith(f"{PACKS_DIR}/") and name.endswith(PACK_INDEX_SUFFIX):
                    path = self._root / name
                    index = parse_pack_index(path.read_bytes(), path)
                    for digest in index.slots:
                        self._pack_of.setdefault(digest, index.name)
        return self._pack_of

    def _files_holding(self, digests: Iterable[str]) -> list[str]:
        """The tree's files that hold ``digests``: a loose blob, else the pack listing it."""
        wanted = []
        for digest in set(digests):
            loose = f"{BLOBS_DIR}/{digest[:2]}/{digest}{BLOB_SUFFIX}"
            if loose in self._files:
                wanted.append(loose)
            elif (pack := self._packs().get(digest)) is not None:
                wanted.append(f"{PACKS_DIR}/{pack}{PACK_SUFFIX}")
        return wanted


class _GitObjectBlobs(BlobBackend):
    """Loose blob frames read from git's objects into memory: the blob seam's read-only
    backend for a store at a revision."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.frames: dict[str, bytes] = {}

    def read(self, digest: str) -> bytes | None:
        return self.frames.get(digest)

    def exists(self, digest: str) -> bool:
        return digest in self.frames

    def write(self, digest: str, frame: bytes, *, durable: bool = True) -> None:
        raise GitError("a store at a git revision is read-only")

    def delete(self, digest: str) -> None:
        raise GitError("a store at a git revision is read-only")

    def walk(self) -> Iterator[BlobFile]:
        return iter(())

    def location(self, digest: str) -> Path:
        return self._root / BLOBS_DIR / digest[:2] / f"{digest}{BLOB_SUFFIX}"


@contextmanager
def revision_store(repo: Path, revision: str, store_path: str) -> Iterator[RevisionStore]:
    """A :class:`RevisionStore` in a temporary directory, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="castore-rev-"))
    try:
        yield RevisionStore(repo, revision, store_path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _is_small_file(name: str) -> bool:
    return (
        name == CONFIG_NAME
        or (name.startswith(f"{INDEX_DIR}/") and name.endswith(".json"))
        or (name.startswith(f"{PACKS_DIR}/") and name.endswith(PACK_INDEX_SUFFIX))
    )


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _resolve(repo: Path, revision: str) -> str:
    if revision.startswith("-"):
        raise GitError(f"{revision!r} is not a revision")
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    except GitError:
        raise GitError(
            f"unknown revision {revision!r} in {repo}: give a commit, branch or tag "
            "(for example HEAD~1)"
        ) from None


def _cat_files(repo: Path, shas: list[str]) -> list[bytes]:
    """The contents of git blobs, in order, from one ``git cat-file --batch``."""
    result = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="".join(f"{sha}\n" for sha in shas).encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise GitError(f"`git cat-file --batch` failed: {result.stderr.decode().strip()}")
    out, position, contents = result.stdout, 0, []
    for sha in shas:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise GitError(f"git object {sha} is not a file ({out[position:header_end]!r})")
        size = int(header[2])
        start = header_end + 1
        contents.append(out[start : start + size])
        position = start + size + 1
    return contents


def _pointer_oid(pointer: bytes) -> str | None:
    for line in pointer.decode("ascii", "replace").splitlines():
        if line.startswith("oid sha256:"):
            return line.removeprefix("oid sha256:").strip()
    return None


def _lfs_contents(
    repo: Path, commit: str, pointers: dict[str, bytes]
) -> Iterator[tuple[str, bytes]]:
    """(repository path, content) of each LFS pointer: local objects first, the rest
    fetched in batches. A file whose object is nowhere is left out (its blobs then read
    as missing, and the diff says so)."""
    objects = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    if not objects.is_absolute():
        objects = repo / objects
    objects = objects / "lfs" / "objects"
    oids = {path: _pointer_oid(pointer) for path, pointer in pointers.items()}

    def local(oid: str | None) -> bytes | None:
        if oid is None:
            return None
        path = objects / oid[:2] / oid[2:4] / oid
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == oid else None

    found = {path: local(oid) for path, oid in oids.items()}
    missing = [path for path, data in found.items() if data is None]
    if missing:
        remote = _lfs_remote(repo)
        for chunk in include_chunks(missing):
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(repo),
                    "-c",
                    "lfs.fetchexclude=",
                    "lfs",
                    "fetch",
                    f"--include={','.join(chunk)}",
                    remote,
                    commit,
                ],
                capture_output=True,
                check=False,
            )
        found.update((path, local(oids[path])) for path in missing)
    for path, data in found.items():
        if data is not None:
            yield path, data


def _lfs_remote(repo: Path) -> str:
    """The remote git-lfs fetches from: ``remote.lfsdefault``, else origin, else the first."""
    try:
        return git(repo, "config", "--get", "remote.lfsdefault").strip()
    except GitError:
        remotes = git(repo, "remote").split()
        return "origin" if "origin" in remotes or not remotes else remotes[0]


class WorkingTreeStore:
    """The store as the working tree has it (the other side of most diffs)."""

    label = "working tree"

    def __init__(self, store: Store | None) -> None:
        self.store = store

    def namespaces(self) -> dict[str, Mapping[str, Entry]]:
        if self.store is None:
            return {}
        return {name: self.store.entries(name) for name in self.store.namespaces()}

    def prepare(self, digests: Iterable[str]) -> None:
        """Pull whatever of ``digests`` is still an LFS pointer here (one batch)."""
        wanted = list(digests)
        if self.store is not None and wanted:
            internals(self.store).fetch_lfs_blobs(wanted)

    def read_value(self, digest: str) -> Any:
        if self.store is None:
            raise GitError("the working tree has no store")
        return self.store.read_blob(digest)
