"""A store's files as a git revision holds them, read from git's objects without a
checkout: the file seam over ``git ls-tree`` and ``git cat-file --batch``.

``castore diff`` reads a store at a revision through this backend, by the same layout
and checks as any other (digests included): the tree is listed once, files are read in
batches (one ``git cat-file --batch`` a round, kept in memory: a diff reads each file
once), and git-lfs pointers are resolved from the repository's local LFS objects, those
missing downloaded in one ``git lfs fetch --include=…`` a round (git-lfs's batch API).

Only regular files are taken from the tree: a symlink or submodule committed under the
store is skipped, so a hostile revision cannot make castore read outside it.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Final

from castore._storage.files.lfs import include_chunks
from castore._storage.files.memory import BytesRanges
from castore._storage.files.pointers import is_lfs_pointer
from castore._storage.files.seam import FileHandle, FileInfo, Files, Warmup
from castore._storage.layout import FileKind, file_at, relative_path
from castore.errors import GitError

#: git's mode for a regular file (and an executable one): nothing else is read.
_REGULAR_MODES: Final = frozenset({"100644", "100755"})


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"`git {' '.join(args[:2])}` failed: {stderr}")
    return result.stdout


class GitTreeFiles(Files):
    """The files under ``prefix`` in ``commit`` of ``repo`` (read-only)."""

    def __init__(self, repo: Path, commit: str, prefix: str, *, label: str) -> None:
        self.repo = repo
        self.commit = commit
        self.prefix = prefix.strip("/")
        self.label = label
        self.tree = self._list_tree()
        self._contents: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"GitTreeFiles({self.label!r})"

    def describe(self) -> str:
        return self.label

    def _list_tree(self) -> dict[str, tuple[str, int]]:
        """The store's regular files at the commit: path in the store -> (blob id, size)."""
        spec = f"{self.commit}:{self.prefix}" if self.prefix else self.commit
        try:
            listing = _git(self.repo, "ls-tree", "-r", "-l", "-z", spec)
        except GitError:  # the store did not exist at that revision
            return {}
        files: dict[str, tuple[str, int]] = {}
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha, size = meta.decode().split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != "blob" or mode not in _REGULAR_MODES or not _safe_relative(path):
                continue  # symlinks, submodules, odd names: never followed or written
            files[path] = (sha, int(size))
        return files

    def read_paths(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of files of the tree (paths inside the store), fetched in one
        round; a path the tree lacks, or whose LFS object is nowhere, is left out."""
        wanted = [path for path in dict.fromkeys(paths) if path in self.tree]
        fresh = [path for path in wanted if path not in self._contents]
        if fresh:
            contents = cat_files(self.repo, [self.tree[path][0] for path in fresh])
            pointers: dict[str, bytes] = {}
            for path, data in zip(fresh, contents, strict=True):
                if is_lfs_pointer(data):
                    pointers[path] = data
                else:
                    self._contents[path] = data
            if pointers:
                in_repo = {self._in_repo(path): path for path in pointers}
                lfs = {self._in_repo(path): data for path, data in pointers.items()}
                for path, data in _lfs_contents(self.repo, self.commit, lfs):
                    self._contents[in_repo[path]] = data
        return {path: self._contents[path] for path in wanted if path in self._contents}

    def _in_repo(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def read(self, kind: FileKind, name: str) -> bytes | None:
        path = relative_path(kind, name)
        return self.read_paths([path]).get(path)

    def open_ranges(self, kind: FileKind, name: str) -> BytesRanges | None:
        data = self.read(kind, name)
        return None if data is None else BytesRanges(data)

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        found = self.tree.get(relative_path(kind, name))
        return None if found is None else FileInfo(kind, name, found[1], 0.0)

    def signature(self, kind: FileKind) -> object:
        return self.commit  # a revision never changes

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        found = []
        for path, (_, size) in self.tree.items():
            at = file_at(path)
            if at is not None and at[0] is kind:
                found.append(FileInfo(kind, at[1], size, 0.0))
        yield from sorted(found, key=lambda info: info.name)

    def warm_up(self, handles: Iterable[FileHandle]) -> list[Warmup]:
        """Read every file of ``handles`` in one round (what a diff compares next)."""
        self.read_paths(str(handle) for handle in handles)
        return []

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        raise GitError("a store at a git revision is read-only")

    def delete(self, kind: FileKind, name: str) -> None:
        raise GitError("a store at a git revision is read-only")

    def location(self, kind: FileKind, name: str) -> Path:
        return Path(f"{self.label}/{relative_path(kind, name)}")


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def cat_files(repo: Path, shas: list[str]) -> list[bytes]:
    """The contents of git blobs, in order, from one ``git cat-file --batch``."""
    out = _git(repo, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode())
    position, contents = 0, []
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
    objects = Path(_git(repo, "rev-parse", "--git-common-dir").decode().strip())
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
        return _git(repo, "config", "--get", "remote.lfsdefault").decode().strip()
    except GitError:
        remotes = _git(repo, "remote").decode().split()
        return "origin" if "origin" in remotes or not remotes else remotes[0]
