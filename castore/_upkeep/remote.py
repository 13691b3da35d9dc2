"""``castore remote add``, ``castore push`` and ``castore pull``: a store's packs on
object storage, as DVC keeps data on its remotes and Bazel in its remote CAS.

The remote holds packs, their ``.idx`` tables and the loose blobs the store keeps loose
(its zstd dictionaries), under the same names as the store. Every name is a digest, so
objects are written once and never locked.

- **push** first packs what is loose (a remote holds packs), then asks the remote which
  of the selection's files it lacks (one listing, as Bazel's ``FindMissingBlobs``), and
  uploads those: each pack checked against its name before it goes, and its ``.idx``
  only once the pack is there. A push killed at any instant leaves whole objects only,
  and no ``.idx`` on the remote names a pack the remote lacks; the next push finishes.
- **pull** downloads what the selection needs and this checkout lacks, each object
  checked before it is kept.

A selection is namespaces (a namespace or a folder of them, as test paths become), or
everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from castore._storage.config import REMOTE_OPTIONS, StoreConfig, check_remote
from castore._storage.files.object_store import ObjectStoreFiles
from castore._storage.files.seam import FileHandle, Files
from castore._storage.files.transfer import Copied, copy_files
from castore._storage.layout import FileKind
from castore._storage.remotes import open_remote
from castore._storage.store import Store
from castore._upkeep.packing import PACK_TARGET_BYTES, Packing, pack_parts
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress
from castore.errors import IndexFormatError, RemoteConfigError, RemoteObjectError

#: URL parts that would carry a credential into castore.json, which castore refuses.
_SECRET_QUERY = ("key", "secret", "token", "signature", "sig", "password", "credential")


@dataclass
class Transfer:
    """What one push or pull did."""

    remote: str
    url: str
    wanted: int = 0
    """Files the selection needs (packs, their tables, loose blobs)."""
    already: int = 0
    """Of those, how many the receiving side held already."""
    copied: Copied[FileHandle] = field(default_factory=Copied)
    packing: Packing = field(default_factory=Packing)
    """What push packed first (a remote holds packs)."""
    not_here: list[str] = field(default_factory=list)
    """Files the selection needs that the sending side lacks."""


def add_remote(
    store: Store,
    name: str,
    url: str,
    *,
    options: dict[str, str | bool] | None = None,
    default: bool = False,
    replace: bool = False,
) -> StoreConfig:
    """Name a remote in castore.json: its URL and options, never credentials. The first
    remote a store gets becomes its default (the one replays read through)."""
    options = {key: value for key, value in (options or {}).items() if value not in (None, "")}
    _refuse_credentials(url, options)
    parts = UpkeepParts.of(store)
    with parts.writer.lock():
        store.refresh()
        config = parts.config.current
        if name in config.remotes and not replace:
            raise RemoteConfigError(
                f"castore.json already has a remote {name!r} ({config.remotes[name].url}); "
                "pass --force to replace it"
            )
        try:
            spec = check_remote(name, {"url": url, **options}, parts.config.path)
        except IndexFormatError as error:
            raise RemoteConfigError(error.detail) from None
        remotes = {**config.remotes, name: spec}
        chosen = name if default or config.default_remote is None else config.default_remote
        updated = dataclasses.replace(config, remotes=remotes, default_remote=chosen)
        parts.writer.save_config(updated)
    return updated


def remove_remote(store: Store, name: str) -> StoreConfig:
    parts = UpkeepParts.of(store)
    with parts.writer.lock():
        store.refresh()
        config = parts.config.current
        if name not in config.remotes:
            raise RemoteConfigError(f"castore.json has no remote {name!r}")
        remotes = {key: spec for key, spec in config.remotes.items() if key != name}
        default = config.default_remote if config.default_remote != name else None
        default = default or (sorted(remotes)[0] if remotes else None)
        updated = dataclasses.replace(config, remotes=remotes, default_remote=default)
        parts.writer.save_config(updated)
    return updated


def _refuse_credentials(url: str, options: dict[str, str | bool]) -> None:
    """castore.json is committed: a URL with a user, password or signed query, or an
    option castore does not know, is refused before anything is written."""
    parts = urlsplit(url)
    query = parts.query.lower()
    if parts.username or parts.password or any(word in query for word in _SECRET_QUERY):
        raise RemoteConfigError(
            f"the URL {parts.scheme}://{parts.hostname or ''}… carries credentials, and "
            f"castore.json is committed: give the bare URL ({parts.scheme}://bucket/prefix) "
            "and put credentials in the environment"
        )
    unknown = sorted(set(options) - set(REMOTE_OPTIONS))
    if unknown:
        raise RemoteConfigError(
            f"unknown remote option(s) {', '.join(unknown)}; castore.json holds "
            f"{', '.join(REMOTE_OPTIONS)} (credentials come from the environment)"
        )


def selected_namespaces(store: Store, selection: Iterable[str] | None) -> list[str] | None:
    """The namespaces a selection names: each item is a namespace or a folder of them
    (``tests/integration``); None (everything) stays None. Unknown items are refused."""
    if selection is None:
        return None
    items = [item.strip("/") for item in selection]
    if not items:
        return None
    every = store.namespaces()
    chosen: list[str] = []
    for item in items:
        found = [name for name in every if name == item or name.startswith(f"{item}/")]
        if not found:
            raise RemoteConfigError(
                f"{item!r} names no namespace of this store (`castore ls` lists them)"
            )
        chosen += found
    return sorted(set(chosen))


def wanted_files(parts: UpkeepParts, namespaces: list[str] | None) -> list[FileHandle]:
    """The files a selection needs: packs and loose blobs, then the packs' tables."""
    if namespaces is None:
        data = {FileHandle(FileKind.PACK, name) for name in parts.blobs.packs.names()}
        data |= {
            FileHandle(FileKind.BLOB, blob) for blob in parts.config.current.dictionaries.values()
        }
        data |= {FileHandle(FileKind.BLOB, info.name) for info in parts.blobs.loose.walk()}
    else:
        data = parts.residency.handles_for(namespaces)
    tables = {FileHandle(FileKind.PACK_INDEX, h.name) for h in data if h.kind is FileKind.PACK}
    return sorted(data) + sorted(tables)


def push(
    store: Store,
    *,
    remote: str | None = None,
    namespaces: list[str] | None = None,
    progress: Progress = no_progress,
) -> Transfer:
    """Upload what the selection needs that the remote lacks (see the module docstring)."""
    parts = UpkeepParts.of(store)
    target = open_remote(parts.config.current, remote)
    report = Transfer(target.name, target.url)
    local: Files = parts.blobs.files
    with parts.writer.lock():
        store.refresh()
        report.packing = pack_parts(
            parts,
            repack=False,
            target_bytes=PACK_TARGET_BYTES,
            progress=progress,
            merge_young=False,  # push uploads; it rewrites no pack
        )
        wanted = wanted_files(parts, namespaces)
        report.wanted = len(wanted)
        lacking = target.missing(wanted)
        report.already = report.wanted - len(lacking)
        unreadable = set(local.missing(lacking))
        report.not_here = sorted(str(handle) for handle in unreadable)
        # Data first; a pack's table only once its pack is on the remote.
        data = [h for h in lacking if h.kind is not FileKind.PACK_INDEX and h not in unreadable]
        check = parts.reader.check_file
        copied = copy_files(local, target, data, check=check, progress=progress, label="pushing")
        _refuse_damage(copied, "this checkout", local)
        uploaded = set(data) - set(copied.absent)
        on_remote = {h.name for h in wanted if h.kind is FileKind.PACK and h not in lacking}
        on_remote |= {h.name for h in uploaded if h.kind is FileKind.PACK}
        tables = [
            h
            for h in lacking
            if h.kind is FileKind.PACK_INDEX and h.name in on_remote and h not in unreadable
        ]
        indexed = copy_files(local, target, tables, check=check, label="pushing tables")
        _refuse_damage(indexed, "this checkout", local)
        report.copied = _sum(copied, indexed)
    return report


def pull(
    store: Store,
    *,
    remote: str | None = None,
    namespaces: list[str] | None = None,
    progress: Progress = no_progress,
) -> Transfer:
    """Download what the selection needs that this checkout lacks, each file checked."""
    parts = UpkeepParts.of(store)
    source = open_remote(parts.config.current, remote)
    report = Transfer(source.name, source.url)
    local: Files = parts.blobs.files
    with parts.writer.lock_for_reading():
        store.refresh()
        wanted = wanted_files(parts, namespaces)
        report.wanted = len(wanted)
        lacking = local.missing(wanted)
        report.already = report.wanted - len(lacking)
        copied = copy_files(
            source,
            local,
            lacking,
            check=parts.reader.check_file,
            progress=progress,
            label="pulling",
        )
        _refuse_damage(copied, f"remote {source.name}", source)
        report.copied = copied
        report.not_here = sorted(str(handle) for handle in copied.absent)
    return report


def _refuse_damage(copied: Copied[FileHandle], where: str, files: Files) -> None:
    if copied.damaged:
        handle, problem = copied.damaged[0]
        raise RemoteObjectError(where, files.location(*handle), problem)


def _sum(first: Copied[FileHandle], second: Copied[FileHandle]) -> Copied[FileHandle]:
    return Copied(
        files=first.files + second.files,
        bytes=first.bytes + second.bytes,
        seconds=first.seconds + second.seconds,
        absent=first.absent + second.absent,
        damaged=first.damaged + second.damaged,
    )


def remote_files(store: Store, remote: str | None = None) -> ObjectStoreFiles:
    """The remote as a file backend (for tools and tests)."""
    return open_remote(UpkeepParts.of(store).config.current, remote)
