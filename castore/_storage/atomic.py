"""Crash-safe file writes: a reader sees the old file or the new one, never half of either.

Every file castore writes goes through :func:`write_atomic`: the bytes go to a temporary
file in the same directory, are fsynced, and the temporary file is renamed over the
target; the directory is fsynced too so the rename itself survives a power cut. A process
killed at any instant leaves at most a stray ``.*.tmp`` file, which ``castore gc`` removes.

``CASTORE_FSYNC=0`` skips the fsyncs, as git's ``core.fsync`` and PostgreSQL's ``fsync =
off`` do, for machines whose disk does not outlive the job (a CI container, castore's own
test suite). Writes stay atomic: a killed process still leaves the old file or the new one.
Only a power cut or kernel crash may then lose the last writes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from castore._storage.safe_files import ensure_inside
from castore.errors import StoreWriteError

TEMP_SUFFIX: Final = ".tmp"
FSYNC_VARIABLE: Final = "CASTORE_FSYNC"


def fsync_wanted() -> bool:
    """False when ``CASTORE_FSYNC`` says no (``0``, ``false``, ``no``, ``off``); read at
    each write, so a test or a long-lived process can change it."""
    setting = os.environ.get(FSYNC_VARIABLE, "")
    return setting.strip().lower() not in {"0", "false", "no", "off"}


def temp_path_for(target: Path) -> Path:
    """A unique hidden sibling of ``target``; hidden so blob and index walks skip it. The
    random part is ``secrets.token_hex``'s, read from ``os.urandom`` directly: ``secrets``
    and its ``hmac`` cost every replaying session an import for a name it never makes."""
    return target.with_name(f".{target.name}.{os.urandom(6).hex()}{TEMP_SUFFIX}")


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def fsync_directory(directory: Path) -> None:
    """Persist a rename in ``directory`` (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``target`` with ``data`` atomically and durably, creating parent folders.

    ``durable=False`` skips the fsyncs, for bulk writers that make many files durable at
    once with :func:`sync_all` before anything refers to them.
    """
    durable = durable and fsync_wanted()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path_for(target)
        # 0o666 filtered by the umask, like any ordinary file (mkstemp would force 0o600).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise StoreWriteError(target, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        temp.replace(target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(error, OSError):
            raise StoreWriteError(target, error) from None
        raise
    if durable:
        fsync_directory(target.parent)


def sync_all(paths: list[Path]) -> None:
    """Make files written with ``durable=False`` durable: one ``sync()`` where available."""
    if not fsync_wanted():
        return
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in paths:  # pragma: no cover - Windows
        with path.open("rb+") as handle:
            os.fsync(handle.fileno())


def ensure_private_directory(directory: Path) -> None:
    """Create a local-only state folder holding a ``.gitignore`` that ignores everything.

    Like pytest's ``.pytest_cache``: the folder is created under a temporary name and
    renamed into place, so concurrent creators (xdist workers) never see it half-made.
    """
    ensure_inside(directory.parent, directory)  # .castore must not lead out of the store
    if directory.is_dir():
        return
    staging = temp_path_for(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        (staging / ".gitignore").write_text(
            "# Created by castore: local state (locks, last run, quarantine). Never commit it.\n*\n"
        )
    except OSError as error:
        with contextlib.suppress(OSError):
            (staging / ".gitignore").unlink()
        with contextlib.suppress(OSError):
            staging.rmdir()
        raise StoreWriteError(directory, error) from None
    try:
        staging.rename(directory)
    except OSError as error:
        # Lost the race to another process: theirs is as good as ours.
        (staging / ".gitignore").unlink()
        staging.rmdir()
        if not directory.is_dir():
            raise StoreWriteError(directory, error) from None
