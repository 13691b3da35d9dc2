"""The store's own settings file, ``castore.json``, at the top of a store.

It records how new blobs are compressed (zstd level, active dictionary) and every zstd
dictionary the store has ever used, by dictionary id, so any blob, old or new, can always
be read back: a blob's zstd frame names its dictionary id, and this file maps the id to
the dictionary, itself a content-addressed blob.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from castore._storage.atomic import write_atomic
from castore._storage.json_documents import parse_document
from castore._storage.layout import (
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    check_format_version,
    is_digest,
)
from castore._storage.public_names import present_as_public
from castore._storage.safe_files import FileRefused, read_store_file
from castore.errors import IndexFormatError

#: The store layout's version. 2 adds ``packs/``; a store is written as 2 once it has
#: packs, so an older castore refuses it by name instead of finding its blobs missing.
STORE_FORMAT: Final = 2
LOOSE_ONLY_FORMAT: Final = 1
#: zstd level for new blobs; docs/benchmarks.md shows the measurements behind it.
DEFAULT_LEVEL: Final = 19
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 22


#: A remote's settings in castore.json besides its URL: never a credential.
REMOTE_OPTIONS: Final = {
    "endpoint": str,  # an S3-compatible service (MinIO, R2, moto): http(s)://host:port
    "region": str,
    "anonymous": bool,  # unsigned requests: read-only access to a public bucket
    "credentials": str,  # "instance": the EC2 instance profile (instance metadata)
    "account": str,  # an Azure storage account's name
}
REMOTE_SCHEMES: Final = ("s3", "gs", "az", "abfs", "file", "memory")


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """A remote tier as castore.json names it: a URL and options, never credentials."""

    url: str
    options: Mapping[str, str | bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, **dict(sorted(self.options.items()))}


def check_remote(name: object, document: object, path: Path) -> RemoteSpec:
    """A remote's entry of castore.json, checked: a name, a URL castore reads, and only
    the options it knows (a credential-looking key is refused, never stored)."""
    if not isinstance(name, str) or not re.fullmatch(_REMOTE_NAME, name):
        raise IndexFormatError(path, f"remote name {name!r}: use letters, digits, '-', '_'")
    if not isinstance(document, dict) or not isinstance(document.get("url"), str):
        raise IndexFormatError(path, f"remote {name!r}: expected an object with a 'url'")
    url: str = document["url"]
    scheme = url.partition("://")[0]
    if "://" not in url or scheme not in REMOTE_SCHEMES:
        raise IndexFormatError(
            path, f"remote {name!r}: {url!r} is not one of {', '.join(REMOTE_SCHEMES)}:// URLs"
        )
    options: dict[str, str | bool] = {}
    for key, value in document.items():
        if key == "url":
            continue
        expected = REMOTE_OPTIONS.get(key)
        if expected is None:
            raise IndexFormatError(
                path,
                f"remote {name!r}: unknown option {key!r} (castore.json holds "
                f"{', '.join(REMOTE_OPTIONS)}; credentials come from the environment)",
            )
        if not isinstance(value, expected):
            raise IndexFormatError(path, f"remote {name!r}: {key!r} must be a {expected.__name__}")
        options[key] = value if isinstance(value, bool) else str(value)
    return RemoteSpec(url, options)


#: Compiled by re on first use: a store without remotes never checks a name.
_REMOTE_NAME: Final = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    level: int = DEFAULT_LEVEL
    """zstd compression level for new blobs."""
    dictionary: int | None = None
    """Id of the zstd dictionary new blobs are compressed with, if any."""
    dictionaries: Mapping[int, str] = field(default_factory=dict)
    """Every dictionary id this store has used -> digest of the blob holding it."""
    format: int = LOOSE_ONLY_FORMAT
    """The layout version this store needs: 1 for loose blobs only, 2 once it has packs."""
    remotes: Mapping[str, RemoteSpec] = field(default_factory=dict)
    """Remote tiers by name (``castore remote add``)."""
    default_remote: str | None = None
    """The remote a replay reads through and ``push``/``pull`` use when none is named."""

    def packed(self) -> StoreConfig:
        """This configuration for a store that holds packs."""
        return dataclasses.replace(self, format=max(self.format, STORE_FORMAT))

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "castore_store": self.format,
            "compression": {"codec": "zstd", "level": self.level, "dictionary": self.dictionary},
            "dictionaries": {str(k): v for k, v in sorted(self.dictionaries.items())},
        }
        if self.remotes:  # absent otherwise: castore.json of a store without one unchanged
            document["remotes"] = {
                name: spec.to_json() for name, spec in sorted(self.remotes.items())
            }
            document["default_remote"] = self.default_remote
        return document


def dump_config(config: StoreConfig) -> bytes:
    return (json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n").encode()


def load_config(root: Path) -> StoreConfig:
    """Read ``castore.json``; a store without one uses the defaults."""
    path = root / CONFIG_NAME
    try:
        raw = read_store_file(path, MAX_CONFIG_BYTES)
    except FileRefused as refused:
        raise IndexFormatError(path, refused.reason) from None
    if raw is None:
        return StoreConfig()
    return parse_config(raw, path)


def parse_config(raw: bytes, path: Path) -> StoreConfig:
    """``castore.json``'s bytes (from a checkout or a git revision), checked."""
    document = parse_document(raw, path)
    version = check_format_version(
        document,
        "castore_store",
        STORE_FORMAT,
        path,
        missing="not a castore store file (no 'castore_store' field)",
    )
    try:
        compression = document.get("compression", {})
        level = int(compression.get("level", DEFAULT_LEVEL))
        active = compression.get("dictionary")
        dictionaries = {int(k): str(v) for k, v in document.get("dictionaries", {}).items()}
    except (AttributeError, TypeError, ValueError) as error:
        raise IndexFormatError(path, f"bad 'compression' or 'dictionaries' ({error})") from None
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise IndexFormatError(path, f"zstd level {level} is outside {MIN_LEVEL}..{MAX_LEVEL}")
    for dictionary_id, blob in dictionaries.items():
        if not 0 < dictionary_id < 2**32 or not is_digest(blob):
            raise IndexFormatError(
                path,
                f"dictionary {dictionary_id}: expected an id in 1..2^32-1 naming a 64-hex "
                f"blob digest, found {blob[:80]!r}",
            )
    if active is not None and int(active) not in dictionaries:
        raise IndexFormatError(path, f"active dictionary {active} is not in 'dictionaries'")
    found = document.get("remotes", {})
    if not isinstance(found, dict):
        raise IndexFormatError(path, "'remotes' must be an object of remotes by name")
    remotes = {name: check_remote(name, spec, path) for name, spec in found.items()}
    default = document.get("default_remote")
    if default is not None and default not in remotes:
        raise IndexFormatError(path, f"default remote {default!r} is not in 'remotes'")
    return StoreConfig(
        level=level,
        dictionary=None if active is None else int(active),
        dictionaries=dictionaries,
        format=max(version, LOOSE_ONLY_FORMAT),
        remotes=remotes,
        default_remote=default,
    )


class ConfigFile:
    """``castore.json`` as this process last read it. Saved atomically, under the store
    lock (the writer holds it); ``generation`` changes with every reload or save, so that
    what is derived from the settings (the compressor) knows when to rebuild."""

    def __init__(self, root: Path, current: StoreConfig | None = None) -> None:
        self.root = root
        self.path = root / CONFIG_NAME
        self.current = load_config(root) if current is None else current
        self.generation = 0

    def reload(self) -> None:
        self.current = load_config(self.root)
        self.generation += 1

    def save(self, config: StoreConfig) -> None:
        write_atomic(self.path, dump_config(config))
        self.current = config
        self.generation += 1

    def write_if_absent(self) -> None:
        """Write the settings in use when the store has no castore.json yet (at its first
        write), so that every store on disk says which format it is."""
        if not self.path.exists():
            write_atomic(self.path, dump_config(self.current))


present_as_public(RemoteSpec, StoreConfig)
