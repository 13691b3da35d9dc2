"""``castore gc --remote NAME``: delete the remote objects no branch needs, never one a
branch still does.

An object is kept when an index at any git ref uses a blob it holds (every branch, tag
and remote-tracking branch, or the refs given), when the working tree's indexes use one
(recordings not committed yet), or when it is younger than the grace period: another
clone may have pushed it for a branch this one has not fetched. What is left goes, a
pack's ``.idx`` before the pack, so the remote never lists a table whose pack is gone.

Reading every index of every ref is what makes this safe; it is also fast, because refs
share most of their files: each distinct index (by git object id) is read once, in one
``git cat-file --batch``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from castore._storage.blobs.packfile import parse_index as parse_pack_index
from castore._storage.config import parse_config
from castore._storage.files.git_tree import cat_files
from castore._storage.files.seam import FileInfo
from castore._storage.layout import CONFIG_NAME, INDEX_DIR, INDEX_SUFFIX, FileKind, file_at
from castore._storage.remotes import open_remote
from castore._storage.store import Store
from castore._upkeep.git import git, git_bytes, store_location
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress
from castore.errors import CastoreError, GitError, IndexFormatError

#: Objects younger than this are kept whatever the refs say (git's gc.pruneExpire).
DEFAULT_GRACE: Final = dt.timedelta(days=14)
_REFS: Final = ("refs/heads", "refs/tags", "refs/remotes")


@dataclass
class RemoteCollection:
    remote: str
    url: str
    refs: int = 0
    """Commits whose stores were read."""
    objects: int = 0
    """Objects on the remote before."""
    kept: int = 0
    young: int = 0
    """Unneeded objects kept because they are younger than the grace period."""
    deleted: list[FileInfo] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        return sum(info.size for info in self.deleted)


@dataclass
class _Needed:
    blobs: set[str] = field(default_factory=set)
    dictionaries: set[str] = field(default_factory=set)
    tables: dict[str, set[str]] = field(default_factory=dict)
    """pack name -> the blobs its .idx lists (from every ref and the working tree)."""
    unread: set[str] = field(default_factory=set)
    """Packs whose table some ref holds damaged: kept, their content unknown."""

    def packs(self) -> set[str]:
        used = {name for name, held in self.tables.items() if not held.isdisjoint(self.blobs)}
        return used | self.unread


def collect_remote(
    store: Store,
    *,
    remote: str | None = None,
    refs: Iterable[str] | None = None,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> RemoteCollection:
    """Delete what no ref (nor the working tree) needs and is older than ``grace``."""
    parts = UpkeepParts.of(store)
    files = open_remote(parts.config.current, remote)
    result = RemoteCollection(files.name, files.url, dry_run=dry_run)
    repo, store_path = store_location(store.root)
    commits = _commits(repo, refs)
    result.refs = len(commits)
    needed = _needed_at(repo, store_path, commits, progress)
    _add_working_tree(store, parts, needed)
    packs = needed.packs()
    keep_blobs = needed.blobs | needed.dictionaries
    listing = [
        info
        for kind in (FileKind.PACK_INDEX, FileKind.PACK, FileKind.BLOB)
        for info in files.listing(kind)
    ]
    result.objects = len(listing)
    cutoff = time.time() - grace.total_seconds()
    doomed: list[FileInfo] = []
    for info in listing:
        wanted = info.name in packs if info.kind is not FileKind.BLOB else info.name in keep_blobs
        if wanted:
            result.kept += 1
        elif info.mtime > cutoff:
            result.young += 1
        else:
            doomed.append(info)
    # Tables before their packs: the remote never lists a table whose pack is gone.
    doomed.sort(key=lambda info: (info.kind is not FileKind.PACK_INDEX, info.kind, info.name))
    result.deleted = doomed
    if not dry_run:
        for info in progress(doomed, len(doomed), "deleting"):
            files.delete(info.kind, info.name)
    return result


def _commits(repo: Path, refs: Iterable[str] | None) -> list[str]:
    if refs is not None:
        chosen = list(refs)
        if not chosen:
            raise GitError("no refs given: name the branches and tags to keep")
        found = []
        for ref in chosen:
            try:
                found.append(git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip())
            except GitError:
                raise GitError(f"unknown ref {ref!r} in {repo}") from None
        return sorted(set(found))
    listing = git(repo, "for-each-ref", "--format=%(objectname) %(objecttype)", *_REFS)
    commits = set()
    for line in listing.splitlines():
        sha, kind = line.split()
        if kind == "tag":  # an annotated tag: the commit it points at
            sha = git(repo, "rev-parse", f"{sha}^{{commit}}").strip()
        commits.add(sha)
    return sorted(commits)


def _needed_at(repo: Path, store_path: str, commits: list[str], progress: Progress) -> _Needed:
    """The blobs every commit's indexes use, and every pack table those commits carry;
    each distinct file read once."""
    indexes: dict[str, str] = {}  # git object id -> a path, for messages
    tables: dict[str, str] = {}  # git object id -> pack name
    configs: dict[str, str] = {}
    prefix = store_path.strip("/")
    for commit in progress(commits, len(commits), "reading refs"):
        spec = f"{commit}:{prefix}" if prefix and prefix != "." else commit
        try:
            listing = git_bytes(repo, "ls-tree", "-r", "-z", spec)
        except GitError:
            continue  # no store at that commit
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            _, kind, sha = meta.decode().split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != "blob":
                continue
            if path == CONFIG_NAME:
                configs.setdefault(sha, f"{commit[:10]}:{path}")
            elif path.startswith(f"{INDEX_DIR}/") and path.endswith(INDEX_SUFFIX):
                indexes.setdefault(sha, f"{commit[:10]}:{path}")
            elif (found := file_at(path)) is not None and found[0] is FileKind.PACK_INDEX:
                tables.setdefault(sha, found[1])
    needed = _Needed()
    shas = list(indexes)
    for sha, raw in zip(shas, cat_files(repo, shas), strict=True):
        needed.blobs.update(_blobs_of(raw, indexes[sha]))
    shas = list(tables)
    for sha, raw in zip(shas, cat_files(repo, shas), strict=True):
        name = tables[sha]
        held = _table(raw, name)
        if held is None:
            needed.unread.add(name)
        else:
            needed.tables.setdefault(name, set()).update(held)
    shas = list(configs)
    for sha, raw in zip(shas, cat_files(repo, shas), strict=True):
        config = parse_config(raw, Path(configs[sha]))
        needed.dictionaries.update(config.dictionaries.values())
    return needed


def _blobs_of(raw: bytes, where: str) -> set[str]:
    """The blob digests an index uses; an index that cannot be read stops gc (nothing may
    be deleted on the word of an index castore cannot read)."""
    try:
        document = json.loads(raw)
        return {entry["blob"] for entry in document["entries"].values()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IndexFormatError(
            Path(where),
            "it cannot be read, so remote gc cannot know what it uses; fix it, or name "
            "the refs to keep with --ref",
        ) from None


def _table(raw: bytes, name: str) -> set[str] | None:
    """The blobs a pack's table lists; None if it is damaged (readers at that ref fall
    back on the pack's own table, so the pack must stay)."""
    try:
        return set(parse_pack_index(raw, Path(f"packs/{name}.idx")).slots)
    except CastoreError:
        return None


def _add_working_tree(store: Store, parts: UpkeepParts, needed: _Needed) -> None:
    store.refresh()
    for namespace in parts.indexes.namespaces():
        needed.blobs.update(entry.blob for entry in parts.indexes.cached(namespace).values())
    needed.dictionaries.update(parts.config.current.dictionaries.values())
    for name, index in parts.blobs.packs.indexes().items():
        needed.tables.setdefault(name, set()).update(index.slots)
