"""Object storage as a file backend: S3 (and S3-compatible services), GCS, Azure, a local
folder and memory, through obstore (Rust's ``object_store``), imported only when a remote
is used (``pip install 'castore[remote]'``).

Objects keep the store's own layout under the remote's prefix (``packs/<name>.pack``,
``packs/<name>.idx``, ``blobs/ab/<digest>.zst``). Every name is content-addressed, so
objects are written once (a conditional put: an object already there is left as it is)
and never need a lock. obstore's errors are mapped to castore's here, in one place: a
missing bucket, refused credentials and an unreachable server each get their own error
naming the remote and what to do.

Credentials never pass through castore's files: obstore reads the usual environment
variables itself; an AWS profile (``AWS_PROFILE``, ``~/.aws/credentials``) is read here
and handed to obstore in memory.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from castore._storage.files.seam import FileHandle, FileInfo, Files
from castore._storage.layout import FileKind, file_at, relative_path
from castore.errors import (
    RemoteAccessError,
    RemoteConfigError,
    RemoteError,
    RemoteNotFoundError,
    RemoteUnavailableError,
)

if TYPE_CHECKING:
    from obstore.store import ObjectStore

INSTALL_HINT: Final = "pip install 'castore[remote]' (or: uv add 'castore[remote]')"
#: Requests in flight at once for a batch (a warm-up, a push, a pull).
CONCURRENCY: Final = 16
#: Above this many names, ``missing`` lists the remote's folders instead of asking per
#: object: one LIST answers a thousand names.
LIST_INSTEAD_OF_HEAD: Final = 16
#: Packs are about 8 MiB: a single PUT each, conditional (multipart uploads cannot be).
SINGLE_PUT_BYTES: Final = 256 * 2**20
_KIND_FOLDERS: Final = {
    FileKind.BLOB: "blobs/",
    FileKind.PACK: "packs/",
    FileKind.PACK_INDEX: "packs/",
}
_CLIENT: Final = {"connect_timeout": "5s", "timeout": "120s"}
_RETRY: Final = {
    "max_retries": 4,
    "backoff": {
        "init_backoff": dt.timedelta(milliseconds=100),
        "max_backoff": dt.timedelta(seconds=2),
        "base": 2,
    },
    "retry_timeout": dt.timedelta(seconds=30),
}


T = TypeVar("T")


def _obstore() -> Any:
    try:
        import obstore  # noqa: PLC0415 - an optional dependency, imported on first use
    except ImportError:
        raise RemoteConfigError(
            f"the remote tier needs obstore, which is not installed: {INSTALL_HINT}"
        ) from None
    return obstore


class ObjectStoreFiles(Files):
    """The files under ``url`` (``s3://bucket/prefix``, ``gs://…``, ``az://…``,
    ``file:///path``, ``memory://``) of the remote called ``name``."""

    def __init__(self, name: str, url: str, options: Mapping[str, str | bool]) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.options = dict(options)
        self._client: ObjectStore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectStoreFiles({self.name!r}, {self.url!r})"

    def describe(self) -> str:
        return f"remote {self.name} ({self.url})"

    # --- the client --------------------------------------------------------------------

    @property
    def client(self) -> ObjectStore:
        """The obstore client, made on first use: opening a store with a remote costs
        nothing until a file is actually missing."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> ObjectStore:
        obstore = _obstore()
        from obstore.store import from_url  # noqa: PLC0415

        scheme, _, rest = self.url.partition("://")
        config: dict[str, Any] = {}
        client: dict[str, Any] = dict(_CLIENT)
        extra: dict[str, Any] = {}
        if self.options.get("anonymous"):
            config["skip_signature"] = True
        if scheme == "s3":
            endpoint = (
                self.options.get("endpoint")
                or os.environ.get("AWS_ENDPOINT_URL_S3")
                or (os.environ.get("AWS_ENDPOINT_URL"))
            )
            if isinstance(endpoint, str) and endpoint:
                config["endpoint"] = endpoint
                if endpoint.startswith("http://"):
                    client["allow_http"] = True
            region = self.options.get("region") or os.environ.get("AWS_REGION")
            config["region"] = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            if not self.options.get("anonymous"):
                provider = self._aws_credentials()
                if provider is not None:
                    extra["credential_provider"] = provider
        elif scheme in ("az", "abfs") and self.options.get("account"):
            config["account_name"] = self.options["account"]
        elif scheme == "file":
            path = Path(rest if rest.startswith("/") else f"/{rest}")
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise RemoteConfigError(
                    f"remote {self.name!r}: cannot use {path}: {error}"
                ) from None
            local: ObjectStore = obstore.store.LocalStore(path)
            return local
        elif scheme == "memory":
            memory: ObjectStore = obstore.store.MemoryStore()
            return memory
        arguments: dict[str, Any] = {
            "config": config,
            "client_options": client,
            "retry_config": _RETRY,
            **extra,
        }
        try:
            connected: ObjectStore = from_url(self.url, **arguments)
        except (ValueError, obstore.exceptions.BaseError) as error:
            raise RemoteConfigError(f"remote {self.name!r} ({self.url}): {error}") from None
        return connected

    def _aws_credentials(self) -> Callable[[], Mapping[str, Any]] | None:
        """How S3 requests get signed: obstore's own environment lookup when it will find
        something, else an AWS profile read here, else the instance profile when the
        remote asks for it. None of it is ever written anywhere."""
        env = os.environ
        if (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")) or any(
            env.get(name)
            for name in (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            )
        ):
            return None
        profile = _aws_profile()
        if profile is not None:
            return lambda: profile
        if self.options.get("credentials") == "instance":
            return None
        raise RemoteAccessError(
            self.name,
            self.url,
            "no credentials were found (no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, no "
            f"profile {env.get('AWS_PROFILE', 'default')!r} in the shared credentials file); "
            "on EC2 with an instance profile, add the remote option credentials=instance",
        )

    def _mapped(self, error: Exception) -> RemoteError:
        """obstore's error as castore's, naming this remote: the one place they map."""
        text = str(error).split("\n\nDebug source:", 1)[0]
        short = text.splitlines()[0] if text else type(error).__name__
        obstore = _obstore()
        exceptions = obstore.exceptions
        if "NoSuchBucket" in text or "ContainerNotFound" in text or "bucket does not exist" in text:
            return RemoteNotFoundError(self.name, self.url, "NoSuchBucket")
        if isinstance(
            error, exceptions.PermissionDeniedError | exceptions.UnauthenticatedError
        ) or any(
            code in text
            for code in (
                "403 Forbidden",
                "401 Unauthorized",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            )
        ):
            return RemoteAccessError(self.name, self.url, _last_words(short))
        if isinstance(error, RemoteError):
            return error
        return RemoteUnavailableError(self.name, self.url, _last_words(short))

    def _path(self, kind: FileKind, name: str) -> str:
        return relative_path(kind, name)

    # --- the seam --------------------------------------------------------------------

    def _if_there(self, request: Callable[[Any], T]) -> T | None:
        """``request(obstore)``'s answer, None if the object is not there; a missing
        bucket and every other failure are the remote's errors, by name."""
        obstore = _obstore()
        try:
            return request(obstore)
        except FileNotFoundError as error:
            if "NoSuchBucket" in str(error):
                raise self._mapped(error) from None
            return None
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._mapped(error) from None

    def read(self, kind: FileKind, name: str) -> bytes | None:
        path = self._path(kind, name)
        return self._if_there(lambda obstore: bytes(obstore.get(self.client, path).bytes()))

    def read_many(self, handles: Iterable[FileHandle]) -> Iterator[tuple[FileHandle, bytes | None]]:
        """Concurrently, :data:`CONCURRENCY` requests in flight; each result as it lands."""
        wanted = list(handles)
        if len(wanted) <= 1:
            yield from super().read_many(wanted)
            return
        with _pool(len(wanted)) as pool:
            futures = [pool.submit(self.read, *handle) for handle in wanted]
            try:
                for handle, future in zip(wanted, futures, strict=True):
                    yield handle, future.result()
            finally:
                for future in futures:
                    future.cancel()

    def read_range(self, kind: FileKind, name: str, offset: int, length: int) -> bytes | None:
        """One ranged GET (no HEAD first); a range past the object's end comes back short."""
        path = self._path(kind, name)
        return self._if_there(
            lambda obstore: bytes(
                obstore.get_range(self.client, path, start=offset, end=offset + length)
            )
        )

    def open_ranges(self, kind: FileKind, name: str) -> _RemoteRanges | None:
        info = self.stat(kind, name)
        return None if info is None else _RemoteRanges(self, self._path(kind, name), info.size)

    def write(self, kind: FileKind, name: str, data: bytes, *, durable: bool = True) -> None:
        """Write once: an object already there (same name, so same content) is kept."""
        obstore = _obstore()
        path = self._path(kind, name)
        try:
            if len(data) <= SINGLE_PUT_BYTES:
                obstore.put(self.client, path, data, mode="create", use_multipart=False)
            elif self.stat(kind, name) is None:
                obstore.put(self.client, path, data)
        except obstore.exceptions.AlreadyExistsError:
            return
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._mapped(error) from None

    def stat(self, kind: FileKind, name: str) -> FileInfo | None:
        path = self._path(kind, name)
        meta = self._if_there(lambda obstore: obstore.head(self.client, path))
        if meta is None:
            return None
        return FileInfo(kind, name, int(meta["size"]), meta["last_modified"].timestamp())

    def listing(self, kind: FileKind) -> Iterator[FileInfo]:
        obstore = _obstore()
        found = []
        try:
            for batch in obstore.list(self.client, prefix=_KIND_FOLDERS[kind]):
                for meta in batch:
                    at = file_at(meta["path"])
                    if at is not None and at[0] is kind:
                        found.append(
                            FileInfo(
                                kind, at[1], int(meta["size"]), meta["last_modified"].timestamp()
                            )
                        )
        except FileNotFoundError:
            return
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._mapped(error) from None
        yield from sorted(found, key=lambda info: info.name)

    def missing(self, handles: Iterable[FileHandle]) -> list[FileHandle]:
        """Which objects the remote lacks: a LIST of the folders involved for many names
        (a thousand names a request), a HEAD each, concurrently, for a few."""
        wanted = list(dict.fromkeys(handles))
        if len(wanted) > LIST_INSTEAD_OF_HEAD:
            present = {
                (info.kind, info.name)
                for kind in {handle.kind for handle in wanted}
                for info in self.listing(kind)
            }
            return [handle for handle in wanted if (handle.kind, handle.name) not in present]
        if not wanted:
            return []
        with _pool(len(wanted)) as pool:
            held = list(pool.map(lambda handle: self.stat(*handle) is not None, wanted))
        return [handle for handle, here in zip(wanted, held, strict=True) if not here]

    def delete(self, kind: FileKind, name: str) -> None:
        obstore = _obstore()
        try:
            obstore.delete(self.client, self._path(kind, name))
        except FileNotFoundError:
            return
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._mapped(error) from None

    def location(self, kind: FileKind, name: str) -> Path:
        return Path(self._path(kind, name))

    def close(self) -> None:
        self._client = None


class _RemoteRanges:
    """An object read by ranges, one request a read (the local cache is the fast path)."""

    def __init__(self, files: ObjectStoreFiles, path: str, size: int) -> None:
        self._files = files
        self._path = path
        self.size = size

    def pread(self, length: int, offset: int, /) -> bytes:
        obstore = _obstore()
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        try:
            return bytes(obstore.get_range(self._files.client, self._path, start=offset, end=end))
        except (obstore.exceptions.BaseError, OSError) as error:
            raise self._files._mapped(error) from None

    def close(self) -> None:
        pass


def _pool(jobs: int) -> Any:
    """Threads for a batch (imported here: a replay that fetches nothing never pays)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    return ThreadPoolExecutor(max(1, min(CONCURRENCY, jobs)))


def _last_words(text: str) -> str:
    """The useful end of an obstore message (which repeats the whole request)."""
    for marker in ("Server returned non-2xx status code: ", "HTTP error: "):
        if marker in text:
            return text.split(marker, 1)[1].split("<?xml", 1)[0].strip(" :") or text
    return text[:300]


def _aws_profile() -> dict[str, Any] | None:
    """The keys of the AWS profile in use (``AWS_PROFILE``, else ``default``) from the
    shared credentials file, or None."""
    import configparser  # noqa: PLC0415 - only without credentials in the environment

    env = os.environ
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    if not parser.has_section(name):
        return None
    section = parser[name]
    key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not key or not secret:
        return None
    return {
        "access_key_id": key,
        "secret_access_key": secret,
        "token": section.get("aws_session_token"),
        "expires_at": None,
    }
