"""The store's locks: one store-wide write lock, and a lock per key being recorded.

Both are files under ``.castore/`` (git-ignored). filelock is imported on first use, so
replay-only runs never pay for it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import blake3

from castore._storage.atomic import ensure_private_directory
from castore._storage.layout import LOCKS_DIR
from castore._storage.public_names import present_as_public
from castore._storage.safe_files import ensure_inside
from castore.errors import StoreLockedError, StoreWriteError

if TYPE_CHECKING:
    import filelock

LOCK_TIMEOUT_SECONDS: Final = 300.0
KEY_LOCK_BUCKETS: Final = 256  # lock files per store: bounded; collisions are rare, harmless
STORE_LOCK_NAME: Final = "store.lock"


class StoreLock:
    """Held by every write and by upkeep commands; reentrant within a process."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STORE_LOCK_NAME
        self._state_dir = state_dir
        self.mutex = threading.RLock()
        """Held with the file lock; alone, it orders this process's threads."""
        self._file_lock: filelock.FileLock | None = None
        self._depth = 0
        """How many times the holding thread has taken the lock (only it reads this)."""

    def acquire(self) -> bool:
        """Take the lock; True the first time this process takes it (the store is then
        known to have its state folder). Taken again by the thread that holds it (each
        put of a batch), it only counts: filelock's own reentry costs a put about a
        fifth of its time."""
        import filelock  # noqa: PLC0415

        self.mutex.acquire()
        if self._depth:
            self._depth += 1
            return False
        first = self._file_lock is None
        try:
            if self._file_lock is None:
                ensure_private_directory(self._state_dir)
                self._file_lock = filelock.FileLock(self.path)
            self._file_lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
        except filelock.Timeout:
            self.mutex.release()
            raise StoreLockedError(self.path, LOCK_TIMEOUT_SECONDS) from None
        except OSError as error:
            self.mutex.release()
            self._file_lock = None
            raise StoreWriteError(self.path, error) from None
        except BaseException:
            self.mutex.release()
            raise
        self._depth = 1
        return first

    def release(self) -> None:
        assert self._file_lock is not None and self._depth > 0
        self._depth -= 1
        if not self._depth:
            self._file_lock.release()
        self.mutex.release()


class KeyLock:
    """Held while one key is recorded, so two processes (xdist workers) call its generator
    once: the second waits, then replays what the first recorded. Keys share a bounded
    set of lock files, so the lock folder never grows with the store."""

    def __init__(self, state_dir: Path, namespace: str, key: str) -> None:
        bucket = blake3.blake3(f"{namespace}\0{key}".encode()).digest()[0]
        self._state_dir = state_dir
        self.path = state_dir / LOCKS_DIR / f"record-{bucket % KEY_LOCK_BUCKETS:02x}.lock"
        self._lock: filelock.FileLock | None = None

    def _file_lock(self) -> filelock.FileLock:
        import filelock  # noqa: PLC0415 - recording only

        if self._lock is None:
            ensure_private_directory(self._state_dir)
            ensure_inside(self._state_dir, self.path.parent)
            try:
                self.path.parent.mkdir(exist_ok=True)
            except OSError as error:
                raise StoreWriteError(self.path.parent, error) from None
            self._lock = filelock.FileLock(self.path, is_singleton=True)
        return self._lock

    def acquire(self) -> None:
        """Block until the lock is held (sync callers)."""
        try:
            self._file_lock().acquire()
        except OSError as error:
            raise StoreWriteError(self.path, error) from None

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting (async callers poll)."""
        import filelock  # noqa: PLC0415

        try:
            self._file_lock().acquire(timeout=0)
        except filelock.Timeout:
            return False
        except OSError as error:
            raise StoreWriteError(self.path, error) from None
        return True

    def release(self) -> None:
        self._file_lock().release()


present_as_public(KeyLock)
