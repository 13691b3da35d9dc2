"""A store as it was at a git revision, read from git's objects without a checkout.

``castore diff`` compares indexes first and reads values only for entries whose digest
changed, so a revision is read sparsely: ``castore.json`` and the indexes at once, and a
blob or a pack only when a value it holds is asked for, through the file seam's git
backend (``GitTreeFiles``: one ``git cat-file --batch`` a round, LFS objects from the
local LFS store or one ``git lfs fetch``), held in memory. The store is then read by the
same layout and checks as any other (digests included); nothing is copied to disk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from castore._storage.blobs.stored import StoredBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.compression import Compression
from castore._storage.config import ConfigFile, StoreConfig, parse_config
from castore._storage.files.git_tree import GitTreeFiles
from castore._storage.frames import Decompressor
from castore._storage.index import Entry, parse_index
from castore._storage.layout import CONFIG_NAME, INDEX_DIR, INDEX_SUFFIX
from castore._storage.store import Store
from castore._storage.value_limit import max_value_bytes
from castore._upkeep.git import git
from castore._upkeep.parts import UpkeepParts
from castore.errors import CastoreError, GitError


class RevisionStore:
    """The store under ``store_path`` (relative to the repository's top) at ``revision``."""

    def __init__(self, repo: Path, revision: str, store_path: str) -> None:
        self.repo = repo
        self.revision = revision
        self.commit = _resolve(repo, revision)
        prefix = store_path.strip("/")
        self._label = f"{revision}:{prefix}" if prefix else f"{revision}:"
        self.files = GitTreeFiles(repo, self.commit, prefix, label=self._label.rstrip("/"))
        index_paths = [
            path
            for path in self.files.tree
            if path.startswith(f"{INDEX_DIR}/") and path.endswith(INDEX_SUFFIX)
        ]
        small = self.files.read_paths([CONFIG_NAME, *index_paths])
        with self._named_errors():
            raw = small.get(CONFIG_NAME)
            config = StoreConfig() if raw is None else parse_config(raw, self._path(CONFIG_NAME))
        self._index_bytes = {
            path[len(INDEX_DIR) + 1 : -len(INDEX_SUFFIX)]: small[path]
            for path in index_paths
            if path in small
        }
        blobs = StoredBlobs(self.files)
        compression: Compression
        self._reader = VerifiedBlobs(
            blobs,
            Decompressor(
                max_value_bytes(),
                lambda number: compression.load_dictionary(number),  # noqa: PLW0108 - made below
            ),
        )
        compression = Compression(ConfigFile(Path(self._label), config), self._reader.read_value)
        self._blobs = blobs
        self.prepare(config.dictionaries.values())

    @property
    def label(self) -> str:
        return f"{self.revision} ({self.commit[:10]})"

    def _path(self, name: str) -> Path:
        return Path(f"{self._label.rstrip('/')}/{name}")

    def namespaces(self) -> dict[str, Mapping[str, Entry]]:
        with self._named_errors():
            return {
                name: parse_index(raw, self._path(f"{INDEX_DIR}/{name}{INDEX_SUFFIX}"))
                for name, raw in sorted(self._index_bytes.items())
            }

    def prepare(self, digests: Iterable[str]) -> None:
        """Bring in every blob or pack that holds one of ``digests``, in one round."""
        with self._named_errors():
            self.files.warm_up(self._blobs.handles_for(digests))

    def read_value(self, digest: str) -> Any:
        self.prepare([digest])
        with self._named_errors():
            return self._reader.read_value(digest)

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """A castore error names the revision it is about."""
        try:
            yield
        except GitError:
            raise
        except CastoreError as error:
            raise GitError(f"at {self.label}: {error}") from None


@contextmanager
def revision_store(repo: Path, revision: str, store_path: str) -> Iterator[RevisionStore]:
    """A :class:`RevisionStore` (kept in memory; a context manager for its callers)."""
    yield RevisionStore(repo, revision, store_path)


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
            with contextlib.suppress(CastoreError):  # the read reports what is missing
                UpkeepParts.of(self.store).residency.warm_up_blobs(wanted)

    def read_value(self, digest: str) -> Any:
        if self.store is None:
            raise GitError("the working tree has no store")
        return self.store.read_blob(digest)
