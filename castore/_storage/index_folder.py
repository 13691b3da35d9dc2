"""A store's index files: finding them, caching what was read, and merging writes.

Reads never take a lock: every index is replaced atomically, so a reader sees a whole old
or whole new file. Writes (under the store lock) re-read the index as it is on disk and
apply only their own change (merge on write), so concurrent writers never lose each
other's entries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from castore._storage.atomic import write_atomic
from castore._storage.index import Entry, LineMemo, dump_index, load_index
from castore._storage.layout import INDEX_DIR, INDEX_SUFFIX
from castore._storage.names import check_namespace
from castore._storage.safe_files import ensure_inside


class _CachedIndex:
    """A namespace as last read: a plain class, since a dataclass costs every process
    that imports castore a millisecond to generate (Python 3.11 compiles its methods)."""

    __slots__ = ("entries", "lines", "signature")

    def __init__(
        self,
        entries: dict[str, Entry],
        signature: tuple[int, int, int] | None,  # (inode, size, mtime_ns) of the file read
        lines: LineMemo | None = None,
    ) -> None:
        self.entries = entries
        self.signature = signature
        self.lines: LineMemo = {} if lines is None else lines


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when an index is replaced; of the link itself for a symlink, which the
    read then refuses by name (a loop must not escape as a raw ELOOP)."""
    try:
        stat = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class IndexFiles:
    """The ``index/`` folder of a store: one JSON file per namespace."""

    def __init__(self, store_root: Path) -> None:
        self.root = store_root / INDEX_DIR
        self._store_root = str(store_root)
        self._prefix = f"{self.root}{os.sep}"
        self._cache: dict[str, _CachedIndex] = {}
        #: Bumped whenever a cached index is replaced or forgotten, so that a namespace
        #: handle may keep its entries dict and check one integer instead of looking the
        #: namespace up on every replay.
        self.generation = 0

    def namespaces(self) -> list[str]:
        """Every namespace that has an index file, sorted."""
        found = []
        ensure_inside(self._store_root, self.root)
        for directory, subdirs, files in os.walk(self.root):  # follows no symlinked folder
            subdirs[:] = [name for name in subdirs if not name.startswith(".")]
            for name in files:
                path = Path(directory, name)
                if name.endswith(INDEX_SUFFIX) and not name.startswith("."):
                    found.append(path.relative_to(self.root).as_posix()[: -len(INDEX_SUFFIX)])
        return sorted(found)

    def folder_times(self) -> dict[str, int]:
        """The modification time (ns) of every folder under ``index/``: writing, renaming
        or removing an index (castore writes by renaming) changes its folder's, and a new
        folder changes its parent's. One stat per folder, no index read."""
        times: dict[str, int] = {}
        ensure_inside(self._store_root, self.root)
        for directory, subdirs, _ in os.walk(self.root):
            subdirs[:] = [name for name in subdirs if not name.startswith(".")]
            times[directory] = os.stat(directory).st_mtime_ns  # noqa: PTH116 - string paths
        return times

    def path(self, namespace: str) -> Path:
        return Path(self._file(namespace))

    def _file(self, namespace: str) -> str:
        """:meth:`path` as a string: replay reads build no pathlib objects. Its folder is
        checked to lie inside the store (a namespace ``a/b`` has folder ``index/a``)."""
        file = f"{self._prefix}{check_namespace(namespace)}{INDEX_SUFFIX}"
        ensure_inside(self._store_root, os.path.dirname(file))  # noqa: PTH120 - no Path built
        return file

    def temp_files(self) -> Iterator[Path]:
        """Temporary files of interrupted index writes."""
        if self.root.is_dir():
            yield from (path for path in self.root.rglob(".*.tmp") if path.is_file())

    def forget(self, namespace: str | None = None) -> None:
        if namespace is None:
            self._cache.clear()
        else:
            self._cache.pop(namespace, None)
        self.generation += 1

    def cached(self, namespace: str) -> dict[str, Entry]:
        """The namespace as this process last read it (the replay path: no stat)."""
        found = self._cache.get(namespace)
        if found is None:
            # Without a signature, the next write re-reads the file under the lock (see
            # fresh), which is what it must do anyway.
            entries = load_index(self._file(namespace))
            found = self._remember(namespace, _CachedIndex(entries, None))
        return found.entries

    def fresh(self, namespace: str) -> dict[str, Entry]:
        """The namespace as it is on disk now (reusing the cache if the file is unchanged)."""
        return self._fresh(namespace).entries

    def _fresh(self, namespace: str) -> _CachedIndex:
        path = self.path(namespace)
        signature = _signature(path)
        found = self._cache.get(namespace)
        if found is None or found.signature != signature or signature is None:
            found = self._remember(namespace, _CachedIndex(load_index(path), signature))
        return found

    def _remember(self, namespace: str, cached: _CachedIndex) -> _CachedIndex:
        self._cache[namespace] = cached
        self.generation += 1
        return cached

    def overlay(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        """Show changes not yet committed to this process's reads (inside a batch)."""
        entries = self.cached(namespace)
        for key, entry in changes.items():
            if entry is None:
                entries.pop(key, None)
            else:
                entries[key] = entry

    def commit(self, namespace: str, changes: dict[str, Entry | None]) -> None:
        """Apply changes to the index as it is on disk now; call with the write lock held."""
        fresh = self._fresh(namespace)
        current = dict(fresh.entries)
        for key, entry in changes.items():
            if entry is None:
                current.pop(key, None)
            else:
                current[key] = entry
        path = self.path(namespace)
        if current:
            write_atomic(path, dump_index(namespace, current, fresh.lines))
        else:
            path.unlink(missing_ok=True)
            _remove_empty_parents(path.parent, self.root)
        self._remember(namespace, _CachedIndex(current, _signature(path), fresh.lines))


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
