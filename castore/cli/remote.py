"""``castore remote``, ``castore push``, ``castore pull`` and ``castore gc --remote``: the
remote tier's commands. The work is done in ``castore._upkeep.remote`` and
``remote_gc``; these parse, report as text and as ``--json``, and show progress (a
transfer of a few packs of 8 MiB each deserves a bar, where app's waits for 200 items).
``gc --remote`` is an option of ``health``'s gc, which hands over to
:func:`collect_on_remote`.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from castore._storage.config import StoreConfig
from castore._storage.store import Store
from castore._upkeep import remote as remotes
from castore._upkeep.remote_gc import DEFAULT_GRACE, RemoteCollection, collect_remote
from castore.cli.app import Settings, json_option, main
from castore.cli.reports import Report, emit, human

T = TypeVar("T")


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal and there is more than one thing
    to move: a transfer is a few large objects, not thousands of small ones."""
    if total < 2 or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, length=total, label=label, file=sys.stderr) as bar:
        yield from bar


remote_option = click.option(
    "--remote", "remote", metavar="NAME", help="The remote (default: castore.json's default)."
)


def selection(store: Store, items: tuple[str, ...]) -> list[str] | None:
    """Namespaces from the command line's SELECTION: a namespace, a folder of them, or a
    test path (``tests/test_x.py``, ``tests/test_x.py::test_y``, ``tests/``), as the pytest
    plugin names namespaces; nothing selects everything."""
    names = []
    for item in items:
        text = item.replace("\\", "/").split("::", 1)[0]
        while text.startswith("./"):
            text = text[2:]
        names.append(text.removesuffix(".py").rstrip("/"))
    return remotes.selected_namespaces(store, names) if names else None


# --- castore remote ----------------------------------------------------------------


@main.group(name="remote")
def remote_group() -> None:
    """Remotes: object storage (S3, GCS, Azure, a folder) holding the store's packs."""


@dataclass
class RemotesReport(Report):
    config: StoreConfig

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.config.default_remote,
            "remotes": {name: spec.to_json() for name, spec in self.config.remotes.items()},
        }

    def text_lines(self) -> Iterator[str]:
        if not self.config.remotes:
            yield "no remote: add one with `castore remote add NAME URL`"
        for name, spec in sorted(self.config.remotes.items()):
            marker = "*" if name == self.config.default_remote else " "
            options = ", ".join(f"{key}={value}" for key, value in sorted(spec.options.items()))
            yield f"{marker} {name}  {spec.url}" + (f"  ({options})" if options else "")


@remote_group.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint", help="An S3-compatible service: http(s)://host:port (MinIO, R2).")
@click.option("--region", help="The bucket's region (S3).")
@click.option("--account", help="The storage account's name (Azure).")
@click.option(
    "--anonymous", is_flag=True, help="Unsigned requests: read a bucket that allows anyone to."
)
@click.option(
    "--instance-credentials",
    is_flag=True,
    help="Sign with the EC2 instance profile (the instance metadata service).",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default remote.")
@click.option("--force", is_flag=True, help="Replace a remote of that name.")
@json_option
@click.pass_obj
def remote_add(
    settings: Settings,
    *,
    name: str,
    url: str,
    endpoint: str | None,
    region: str | None,
    account: str | None,
    anonymous: bool,
    instance_credentials: bool,
    make_default: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Name a remote in castore.json: its URL (s3://bucket/prefix, gs://…, az://…,
    file:///path) and options, never credentials (those come from the environment and
    profiles). The first remote becomes the default, the one replays read through."""
    options: dict[str, str | bool] = {
        key: value
        for key, value in (
            ("endpoint", endpoint),
            ("region", region),
            ("account", account),
            ("anonymous", anonymous),
            ("credentials", "instance" if instance_credentials else None),
        )
        if value
    }
    config = remotes.add_remote(
        settings.store(must_exist=False),
        name,
        url,
        options=options,
        default=make_default,
        replace=force,
    )
    emit(RemotesReport(config), as_json=as_json)


@remote_group.command(name="list")
@json_option
@click.pass_obj
def remote_list(settings: Settings, as_json: bool) -> None:
    """The remotes castore.json names; * marks the default."""
    emit(RemotesReport(settings.store(must_exist=False).config), as_json=as_json)


@remote_group.command(name="remove")
@click.argument("name")
@click.pass_obj
def remote_remove(settings: Settings, name: str) -> None:
    """Forget a remote (its objects stay where they are)."""
    emit(RemotesReport(remotes.remove_remote(settings.store(), name)), as_json=False)


# --- push and pull -------------------------------------------------------------------


@dataclass
class TransferReport(Report):
    transfer: remotes.Transfer
    verb: str

    def to_json(self) -> dict[str, Any]:
        transfer = self.transfer
        return {
            "remote": transfer.remote,
            "url": transfer.url,
            "wanted": transfer.wanted,
            "already": transfer.already,
            "objects": transfer.copied.files,
            "bytes": transfer.copied.bytes,
            "seconds": round(transfer.copied.seconds, 3),
            "packed_blobs": transfer.packing.blobs_packed,
            "packs_written": [index.name for index in transfer.packing.written],
            "missing": transfer.not_here,
        }

    def text_lines(self) -> Iterator[str]:
        transfer = self.transfer
        packing = transfer.packing
        if packing.written:
            yield (
                f"packed {packing.blobs_packed:,} loose blob(s) into {len(packing.written)} "
                "pack(s) first (a remote holds packs): commit the store's packs/*.idx"
            )
        direction = "to" if self.verb == "pushed" else "from"
        yield (
            f"{self.verb} {transfer.copied.files:,} object(s) "
            f"({transfer.copied.bytes / 1e6:.1f} MB) {direction} remote {transfer.remote} "
            f"in {transfer.copied.seconds:.1f} s; {transfer.already:,} of "
            f"{transfer.wanted:,} were there already"
        )
        for name in transfer.not_here[:5]:
            where = "this checkout" if self.verb == "pushed" else f"remote {transfer.remote}"
            yield f"  not in {where}: {name}"
        if len(transfer.not_here) > 5:
            yield f"  … and {len(transfer.not_here) - 5} more"


@main.command()
@click.argument("selection", nargs=-1)
@remote_option
@json_option
@click.pass_obj
def push(settings: Settings, selection: tuple[str, ...], remote: str | None, as_json: bool) -> None:
    """Upload what SELECTION needs (namespaces, test paths; nothing: everything) that the
    remote lacks. Loose blobs are packed first; each object is written once."""
    store = settings.store()
    transfer = remotes.push(
        store, remote=remote, namespaces=_chosen(store, selection), progress=progress
    )
    emit(TransferReport(transfer, "pushed"), as_json=as_json)


@main.command()
@click.argument("selection", nargs=-1)
@remote_option
@json_option
@click.pass_obj
def pull(settings: Settings, selection: tuple[str, ...], remote: str | None, as_json: bool) -> None:
    """Download what SELECTION needs (namespaces, test paths; nothing: everything) that
    this checkout lacks; each object is checked before it is kept."""
    store = settings.store()
    transfer = remotes.pull(
        store, remote=remote, namespaces=_chosen(store, selection), progress=progress
    )
    emit(TransferReport(transfer, "pulled"), as_json=as_json)


def _chosen(store: Store, items: tuple[str, ...]) -> list[str] | None:
    return selection(store, items)


# --- gc --remote ---------------------------------------------------------------------


@dataclass
class RemoteCollectionReport(Report):
    collection: RemoteCollection

    def to_json(self) -> dict[str, Any]:
        collection = self.collection
        return {
            "remote": collection.remote,
            "url": collection.url,
            "dry_run": collection.dry_run,
            "refs": collection.refs,
            "objects": collection.objects,
            "kept": collection.kept,
            "young": collection.young,
            "deleted": [
                {"kind": str(info.kind), "name": info.name, "size": info.size}
                for info in collection.deleted
            ],
            "bytes": collection.bytes,
        }

    def text_lines(self) -> Iterator[str]:
        collection = self.collection
        verb = "would delete" if collection.dry_run else "deleted"
        for info in collection.deleted:
            yield f"{verb} {info.kind} {info.name} ({human(info.size)})"
        yield (
            f"{verb} {len(collection.deleted):,} of {collection.objects:,} object(s) "
            f"({human(collection.bytes)}) on remote {collection.remote}; kept "
            f"{collection.kept:,} that the indexes of {collection.refs} ref(s) or the working "
            f"tree use, and {collection.young:,} younger than the grace period"
        )


def grace_period(text: str) -> dt.timedelta:
    """``14d``, ``12h``, ``30m``, ``0``: how long an unneeded object is kept."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if found is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 14d, 12h or 0")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "": "days"}[found.group(2)]
    return dt.timedelta(**{unit: float(found.group(1))})


DEFAULT_GRACE_TEXT = f"{DEFAULT_GRACE.days}d"


def collect_on_remote(
    settings: Settings,
    *,
    remote: str,
    refs: tuple[str, ...],
    grace: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """What ``castore gc --remote NAME`` does (``castore.cli``'s gc hands over)."""
    collection = collect_remote(
        settings.store(),
        remote=remote or None,
        refs=list(refs) or None,
        grace=grace_period(grace),
        dry_run=dry_run,
        progress=progress,
    )
    emit(RemoteCollectionReport(collection), as_json=as_json)
