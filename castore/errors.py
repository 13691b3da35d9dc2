"""Every error castore raises, in one tree.

::

    CastoreError
    ├── InvalidNameError            a namespace or key castore refuses (also a ValueError)
    ├── UnencodableValueError       a value, metadata or field castore cannot store (a TypeError)
    ├── StoreError                  the store on disk is not what castore expects
    │   ├── BlobError               a blob that cannot be read
    │   │   ├── CorruptBlobError        its content does not match its digest
    │   │   ├── LfsPointerError         it is still a git-lfs pointer file
    │   │   ├── MissingBlobError        it is not there
    │   │   │   └── LostBlobError           nor in the pack it should be in, here or on the remote
    │   │   └── ValueTooLargeError      it would decompress past the size limit
    │   ├── IndexFormatError        a malformed index, castore.json or last-run.json
    │   ├── UnsupportedFormatError  a file written by a newer castore
    │   ├── StoreLockedError        another process held the lock too long
    │   ├── ReadOnlyStoreError      a write through a read-only view of the store
    │   ├── StoreWriteError         the file system refused a write (disk full, read-only)
    │   ├── UnsafePathError         a folder of the store that leads outside it (a symlink)
    │   └── RemoteError             a remote tier (object storage) that cannot serve as asked
    │       ├── RemoteConfigError       an unknown remote, a bad URL, obstore not installed
    │       ├── RemoteAccessError       credentials missing, wrong, or not allowed to do this
    │       ├── RemoteNotFoundError     the bucket (or container) does not exist
    │       ├── RemoteUnavailableError  the remote cannot be reached (network, server down)
    │       └── RemoteObjectError       an object that does not match its name (also a BlobError)
    ├── EntryNotFoundError          Store.get of an absent key (also a KeyError)
    ├── MissingRecordingError       replay-only mode and no recording (also a LookupError)
    ├── NetworkGuardError           a replaying test reached for another host (also a
    │                               ConnectionRefusedError, as an offline machine gives)
    ├── StaleRecordingError         a recording that can no longer be used as it is
    │   └── ExpiredRecordingError       older than max_age, with on_expired="fail"
    ├── UnreadableRecordingError    a value just recorded that replay could not read back
    ├── ImportFormatError           a file castore import cannot read (also a ValueError)
    ├── ExportError                 a value castore export cannot write as JSON
    ├── TrainingError               a store too small to train a dictionary on
    └── GitError                    git or git-lfs missing, or no repository (also a RuntimeError)

    ExpiredRecordingWarning (a UserWarning): older than max_age, with on_expired="warn"
    RetriedMissError (a BaseException, as pytest.fail's is): a client retried a request
        whose recording is missing; raised so that its retry loop stops at once

Each message says what happened, to which namespace/key or file, and what to do next,
so that a failing test run is a to-do item rather than a riddle. Library code never lets a
raw msgpack, zstd or json exception escape: it wraps it in one of these. The command line
turns any CastoreError into its message and exit code 3.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Self


class CastoreError(Exception):
    """Base class of every castore error."""


class InvalidNameError(CastoreError, ValueError):
    """A namespace or key that castore refuses to store (it could escape the store, or is empty)."""


class UnencodableValueError(CastoreError, TypeError):
    """A value, its metadata or an entry field that cannot be stored faithfully; nothing
    was written."""

    def __init__(self, key: str, type_name: str, location: str, *, what: str = "value") -> None:
        self.key = key
        self.type_name = type_name
        self.location = location
        if what == "entry":  # type_name is what is wrong with a field
            super().__init__(
                f"cannot record key {key!r}: {type_name}, so the index could not be read back; "
                "nothing was written. duration is seconds (finite, not negative), schema a "
                "str or int, stream a StreamKind"
            )
            return
        where = f" at {location}" if location else ""
        hint = (
            "pass type=YourType (dataclass or pydantic model) or serializer=/deserializer= "
            "to the recorder, or convert it to dicts, lists, str, bytes, numbers and datetimes"
            if what == "value"
            else "metadata is stored in the JSON index: use JSON types (dict, list, str, numbers)"
        )
        super().__init__(
            f"cannot record key {key!r}: its {what} holds a {type_name}{where}, "
            f"which castore cannot store; {hint}"
        )


class StoreError(CastoreError):
    """Something in the store on disk is not what castore expects."""


class BlobError(StoreError):
    """A blob that cannot be read. The blob layer raises it naming the file; the store then
    adds whose entry it was (:meth:`with_owner`), which only the store knows."""

    path: Path
    owner: str = ""

    def with_owner(self, owner: str) -> Self:
        """The same error, its message naming ``owner`` ("namespace 'x', key 'k'")."""
        named = type(self).__new__(type(self), *self.args)
        named.__dict__.update(self.__dict__)
        named.owner = owner
        named.args = (named.describe(),)
        return named

    def describe(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptBlobError(BlobError):
    """A blob's content does not match its digest, or is not a readable castore blob."""

    def __init__(self, path: Path, detail: str, owner: str = "") -> None:
        self.path = path
        self.detail = detail
        self.owner = owner
        super().__init__(self.describe())

    def describe(self) -> str:
        path, owner = self.path, self.owner
        used_by = f" (used by {owner})" if owner else ""
        return (
            f"blob {path}{used_by} is corrupt: {self.detail}. Restore it from git "
            f"(`git checkout -- {path.name}` in its folder) or re-record the entry; "
            f"`castore verify --quarantine` moves corrupt blobs aside"
        )


class LfsPointerError(BlobError):
    """A blob is still a git-lfs pointer: the repository was cloned without `git lfs pull`."""

    def __init__(self, path: Path, owner: str = "") -> None:
        self.path = path
        self.owner = owner
        super().__init__(self.describe())

    def describe(self) -> str:
        path, owner = self.path, self.owner
        used_by = f" (used by {owner})" if owner else ""
        return (
            f"blob {path}{used_by} is a git-lfs pointer file, not the recorded data: this "
            f"clone has not downloaded its LFS objects. Run `git lfs install && git lfs pull` "
            f"in the repository (or set GIT_LFS_SKIP_SMUDGE=0 when cloning), then rerun"
        )


class MissingBlobError(BlobError):
    """An index entry points at a blob file that is not there."""

    def __init__(self, path: Path, owner: str = "") -> None:
        self.path = path
        self.owner = owner
        super().__init__(self.describe())

    def describe(self) -> str:
        path, owner = self.path, self.owner
        used_by = f" for {owner}" if owner else ""
        return (
            f"blob {path}{used_by} is missing. Restore it from git (`git status` / "
            f"`git lfs pull`) or re-record the entry; `castore verify` lists every such fault"
        )


class LostBlobError(MissingBlobError):
    """A blob whose pack is neither in this checkout nor on the store's remote."""

    def __init__(self, path: Path, blob: str, pack: str, remote: str, owner: str = "") -> None:
        self.path = path
        self.blob = blob
        self.pack = pack
        self.remote = remote
        self.owner = owner
        BlobError.__init__(self, self.describe())

    def describe(self) -> str:
        used_by = f" for {self.owner}" if self.owner else ""
        return (
            f"blob {self.blob[:16]}…{used_by} is lost: it lives in pack {self.pack[:16]}… "
            f"({self.path}), which is neither in this checkout nor on {self.remote}. Push it "
            f"from a clone that has it (`castore push`), or re-record the entry: "
            f"`RECORD_FIXTURES=true pytest <its test>` replaces it (`castore delete "
            f"NAMESPACE KEY` first drops the lost one)"
        )


class ValueTooLargeError(BlobError):
    """A blob would decompress (or unpack) to more than the store's size limit, or a value
    being recorded is larger than it (``recording``): nothing is read or written."""

    def __init__(
        self, path: Path, size: int | None, limit: int, setting: str, *, recording: bool = False
    ) -> None:
        self.path = path
        self.size = size
        self.limit = limit
        claimed = "an unknown size" if size is None else f"{size:,} bytes"
        if recording:
            message = (
                f"cannot record a value of {claimed} as blob {path}: it is over the limit of "
                f"{limit:,} bytes that every read of it would be held to; nothing was "
                f"written. Raise the limit with {setting} if such values are genuine"
            )
        else:
            message = (
                f"blob {path} would decompress to {claimed}, over the limit of {limit:,} "
                f"bytes; refusing to read it (a decompression bomb or a damaged file). If "
                f"the value is genuine, raise the limit with {setting}"
            )
        super().__init__(message)


class IndexFormatError(StoreError):
    """A file castore reads (an index, castore.json, a pack's ``.idx``, local state) is
    not what castore writes. The message names the kind of file and how to get a sound
    one back: from git for what git tracks, by deleting it for castore's local state."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        what, remedy = _kind_and_remedy(path)
        super().__init__(f"{what} {path} is malformed: {detail}. {remedy}")


def _kind_and_remedy(path: Path) -> tuple[str, str]:
    from_git = f"Fix or restore it from git (`git checkout -- {path}`)"
    parts = path.parts
    # Inside the store's local state folder (layout.STATE_DIR), not merely below some
    # folder of that name that holds the whole store (~/.castore/project/…/index/…).
    state = len(parts) - 1 - parts[::-1].index(".castore") if ".castore" in parts else -1
    if state >= 0 and not {"index", "packs", "blobs"} & set(parts[state + 1 : -1]):
        return "local state file", (
            "Delete it: it is castore's own state, kept out of git, and castore starts it "
            "anew (a deleted last-run.json only leaves `castore prune` fewer verdicts)"
        )
    if path.suffix == ".idx":
        return "pack index", from_git
    what = "store file" if path.name == "castore.json" else "index"
    return what, (
        f"{from_git}; if a merge left it broken, configure the merge driver with "
        "`castore git setup` and merge again"
    )


class UnsupportedFormatError(StoreError):
    """A file written by a newer castore than this one."""

    def __init__(self, path: Path, found: object, supported: int) -> None:
        self.path = path
        super().__init__(
            f"{path} has format version {found!r}, but this castore reads format "
            f"{supported} at most. Upgrade castore (`uv add -U castore` or "
            f"`pip install -U castore`) to read it"
        )


class EntryNotFoundError(CastoreError, KeyError):
    """``Store.get`` of a key the namespace does not hold."""

    def __init__(self, namespace: str, key: str, store_root: Path) -> None:
        self.namespace = namespace
        self.key = key
        super().__init__(f"no entry {key!r} in namespace {namespace!r} of store {store_root}")

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


class StoreLockedError(StoreError):
    """Another process held the store's lock for longer than the timeout."""

    def __init__(self, lock_path: Path, timeout: float) -> None:
        super().__init__(
            f"the store is locked by another process ({lock_path}) and stayed locked for "
            f"{timeout:.0f} s; if no castore process is running, delete that lock file"
        )


class MissingRecordingError(CastoreError, LookupError):
    """A key has no recording and the mode forbids calling the real API."""

    def __init__(
        self,
        namespace: str,
        key: str,
        store_root: Path,
        how_to_record: str,
        *,
        nearest: Sequence[str] = (),
    ) -> None:
        self.namespace = namespace
        self.key = key
        self.store_root = store_root
        self.nearest = list(nearest)
        exists = "" if store_root.exists() else " (this directory does not exist yet)"
        near = "".join(f"\n    {line}" for line in nearest)
        near = f"\n  nearest recorded keys in this namespace:{near}" if near else ""
        super().__init__(
            f"no recording for key {key!r} in namespace {namespace!r}\n"
            f"  store: {store_root}{exists}\n"
            f"  mode:  none (replay only): castore never calls the real API in this mode"
            f"{near}\n"
            f"  to record it, run:\n    {how_to_record}"
        )


class StaleRecordingError(CastoreError):
    """A recording exists but can no longer be used as it is; re-record it."""

    def __init__(self, namespace: str, key: str, reason: str, how_to_record: str) -> None:
        self.namespace = namespace
        self.key = key
        self.reason = reason
        super().__init__(
            f"stale recording for key {key!r} in namespace {namespace!r}: {reason}\n"
            f"  to re-record it, run:\n    {how_to_record}"
        )


class UnreadableRecordingError(CastoreError):
    """A value just recorded that a replay could not read back as the recorder's type;
    nothing was written, so no later run fails on it."""

    def __init__(self, namespace: str, key: str, description: str, reason: str) -> None:
        self.namespace = namespace
        self.key = key
        self.reason = reason
        super().__init__(
            f"the value just recorded for key {key!r} in namespace {namespace!r} cannot be "
            f"read back as {description} ({reason}); nothing was stored. Record it with a "
            "type that accepts it (or no type), or fix the call that produced it"
        )


class NetworkGuardError(CastoreError, ConnectionRefusedError):
    """A connection (or a name lookup) to a host a replaying test may not reach.

    Also a ``ConnectionRefusedError``: every client turns it into its own connection
    error, and code that copes with being offline copes with it."""

    def __init__(self, host: str, port: int | None, where: str, advice: str) -> None:
        self.host = host
        self.port = port
        self.where = where
        target = f"{host}:{port}" if port is not None else host
        super().__init__(
            errno.ECONNREFUSED,
            f"castore's network guard refused a connection to {target} ({where}): in "
            f"replay nothing may leave this machine\n{advice}",
        )

    def __str__(self) -> str:
        return str(self.strerror)


class RetriedMissError(BaseException):
    """A client retried a request whose recording castore already found missing in this
    test. Not an ``Exception`` (as ``pytest.fail``'s is not): an SDK's retry loop catches
    ``Exception`` and would back off for seconds, while the test fails on the miss
    anyway. The message is the miss's."""


class ExpiredRecordingError(StaleRecordingError):
    """A recording is older than the recorder's max_age and on_expired='fail'."""


class ExpiredRecordingWarning(UserWarning):
    """A recording is older than the recorder's max_age and on_expired='warn'."""


class ReadOnlyStoreError(StoreError):
    """A write through a read-only view of a store."""

    def __init__(self, what: str, where: Path) -> None:
        self.path = where
        super().__init__(
            f"cannot {what} ({where}): this view of the store is read-only; open the "
            f"store without the read-only view to record or maintain it"
        )


class StoreWriteError(StoreError):
    """The file system refused a write; the store is as it was before it."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        self.errno = error.errno
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "the disk is full: free some space and run again"
        elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = (
                "the store cannot be written here: replaying works, but record or maintain "
                "it where it is writable"
            )
        else:
            hint = "fix the cause and run again"
        super().__init__(
            f"cannot write {path}: {error.strerror or error}; {hint}. Nothing already "
            f"recorded was changed"
        )


class UnsafePathError(StoreError):
    """A folder inside the store resolves outside it; nothing was read or written there."""

    def __init__(self, path: str, target: str) -> None:
        self.path = Path(path)
        self.target = Path(target)
        super().__init__(
            f"{path} leads outside the store, to {target}: castore follows no link out of "
            f"a store. Remove the link (`git status` shows whether a branch planted it) "
            f"and run again"
        )


class ImportFormatError(CastoreError, ValueError):
    """A file that is neither a seeds fixture file nor a VCR.py cassette."""


class ExportError(CastoreError):
    """A recorded value that plain JSON cannot carry exactly; nothing was written."""

    def __init__(self, namespace: str, key: str, why: str) -> None:
        super().__init__(
            f"cannot export namespace {namespace!r}, key {key!r}: its value holds {why}, "
            f"which plain JSON cannot carry exactly. `castore show` displays it; the store "
            f"itself (git, castore.json) is the way to move it"
        )


class TrainingError(CastoreError):
    """The store cannot be used to train a dictionary (too few values)."""


class GitError(CastoreError, RuntimeError):
    """git (or git-lfs) is missing, or the store is not inside a git repository."""


class RemoteError(StoreError):
    """A remote tier (object storage) that cannot serve the request."""


class RemoteConfigError(RemoteError):
    """An unknown remote name, a URL or option castore cannot use, or obstore missing."""


class RemoteAccessError(RemoteError):
    """Credentials are missing or wrong, or do not allow the operation."""

    def __init__(self, remote: str, url: str, detail: str) -> None:
        self.remote = remote
        self.url = url
        super().__init__(
            f"remote {remote!r} ({url}) refused access: {detail}. castore takes credentials "
            "from the environment and profiles, never from castore.json: for S3 set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), for GCS "
            "GOOGLE_APPLICATION_CREDENTIALS, for Azure AZURE_STORAGE_ACCOUNT_KEY; a bucket "
            "that allows anonymous reads works with `castore remote add --anonymous`"
        )


class RemoteNotFoundError(RemoteError):
    """The bucket or container a remote names does not exist."""

    def __init__(self, remote: str, url: str, detail: str) -> None:
        self.remote = remote
        self.url = url
        super().__init__(
            f"remote {remote!r} ({url}): the bucket does not exist ({detail}). Create it, "
            f"or fix the URL with `castore remote add {remote} URL --force`"
        )


class RemoteUnavailableError(RemoteError):
    """The remote cannot be reached: a network failure, a server that went away."""

    def __init__(self, remote: str, url: str, detail: str) -> None:
        self.remote = remote
        self.url = url
        super().__init__(
            f"remote {remote!r} ({url}) cannot be reached: {detail}. Check the network and "
            "the endpoint (the remote's endpoint option, or AWS_ENDPOINT_URL), then run "
            "again; nothing fetched so far is lost"
        )


class RemoteObjectError(RemoteError, BlobError):
    """An object on the remote that does not match its name (damaged or truncated); it is
    also a blob error, so a replay names the entry that needed it."""

    def __init__(self, remote: str, path: Path, detail: str, owner: str = "") -> None:
        self.remote = remote
        self.path = path
        self.detail = detail
        self.owner = owner
        StoreError.__init__(self, self.describe())

    def describe(self) -> str:
        used_by = f" (needed for {self.owner})" if self.owner else ""
        return (
            f"{self.path} on {self.remote}{used_by} is damaged: {self.detail}. It was not "
            "kept. Objects are written once, so delete it on the remote and `castore push` "
            "again from a clone that has it, or re-record the entries it holds"
        )
