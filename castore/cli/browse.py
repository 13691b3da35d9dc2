"""Looking at a store without changing it: ``stats``, ``ls``, ``show`` and ``cat``."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from castore._storage.blobs.loose import store_holding
from castore._storage.index import Entry, format_time
from castore._storage.layout import is_digest
from castore._storage.names import stored_key
from castore._storage.store import Store, internals
from castore._upkeep import stats as store_stats
from castore._upkeep.jsonview import to_json_view
from castore.cli.app import (
    Settings,
    existing_namespace,
    fail,
    json_option,
    main,
    namespace_argument,
    progress,
)
from castore.cli.reports import Report, emit, emit_json, human, table
from castore.errors import LfsPointerError


@dataclass
class StatsReport(Report):
    root: Path
    stats: store_stats.StoreStats

    def to_json(self) -> dict[str, Any]:
        return self.stats.to_json()

    def text_lines(self) -> Iterator[str]:
        result = self.stats
        yield f"store          {self.root}"
        yield f"namespaces     {result.namespaces:,}"
        yield f"entries        {result.entries:,}"
        yield f"blobs          {result.blobs:,}  ({result.orphans:,} orphaned)"
        if result.packs:
            yield (
                f"packs          {result.packs:,} holding {result.packed_blobs:,} blobs, "
                f"{human(result.pack_bytes)} (their indexes {human(result.pack_index_bytes)}); "
                f"{result.blobs - result.packed_blobs:,} loose"
            )
        yield (
            f"on disk        {human(result.bytes)}  (blob frames {human(result.blob_bytes)}, "
            f"indexes {human(result.index_bytes)})"
        )
        yield f"uncompressed   {human(result.uncompressed_bytes)} of distinct values"
        yield (
            f"dedup          {result.dedup_ratio:.2f}x  ({human(result.logical_bytes)} of "
            f"entries stored as {human(result.uncompressed_bytes)})"
        )
        yield f"compression    {result.compression_ratio:.2f}x"
        if result.largest:
            yield "largest entries:"
            for item in result.largest:
                yield f"  {human(item['size']):>10}  {item['namespace']} :: {item['key']}"


@main.command()
@json_option
@click.option("--top", default=10, show_default=True, help="How many of the largest entries.")
@click.pass_obj
def stats(settings: Settings, as_json: bool, top: int) -> None:
    """Namespaces, entries, blobs, bytes, dedup and compression, the largest entries."""
    result = store_stats.store_stats(settings.store(), top=top, progress=progress)
    emit(StatsReport(settings.root, result), as_json=as_json)


@dataclass(frozen=True)
class ListedEntry:
    """An entry as listings show it: where it is, and what says what it holds."""

    namespace: str
    key: str
    entry: Entry

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "key": self.key, **self.entry.to_json()}


@dataclass
class NamespaceList(Report):
    """``castore ls``: every namespace with its entries and their size, then the largest
    entries by namespace and key, with the metadata that says what a hashed key asked."""

    namespaces: dict[str, Mapping[str, Entry]]
    top: int

    @property
    def largest(self) -> list[ListedEntry]:
        every = (
            ListedEntry(namespace, key, entry)
            for namespace, entries in self.namespaces.items()
            for key, entry in entries.items()
        )
        return heapq.nsmallest(
            self.top, every, key=lambda item: (-item.entry.size, item.namespace, item.key)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "namespaces": [
                {"namespace": namespace, "entries": len(entries), "bytes": _total(entries)}
                for namespace, entries in self.namespaces.items()
            ],
            "largest": [item.to_json() for item in self.largest],
        }

    def text_lines(self) -> Iterator[str]:
        if not self.namespaces:
            yield "no namespaces yet: nothing has been recorded in this store"
            return
        rows = [
            (f"{len(entries):,}", human(_total(entries)), namespace)
            for namespace, entries in self.namespaces.items()
        ]
        yield from table(("entries", "size", "namespace"), rows, "rrl")
        largest = self.largest
        if not largest:
            return
        yield ""
        yield "largest entries:"
        yield from table(
            ("size", "namespace", "key", "about"),
            [
                (human(item.entry.size), item.namespace, item.key, _about(item.entry))
                for item in largest
            ],
            "rlll",
        )


def _total(entries: Mapping[str, Entry]) -> int:
    return sum(entry.size for entry in entries.values())


def _about(entry: Entry) -> str:
    """What an entry's key may not say: call duration, stream, schema, metadata."""
    parts = [f"{entry.duration:.1f} s" if entry.duration is not None else ""]
    parts += [f"stream={entry.stream}" if entry.stream else ""]
    parts += [f"schema={entry.schema}" if entry.schema is not None else ""]
    # A hashed key (request_key) says nothing: its metadata says what was asked.
    parts += [metadata_summary(entry.metadata)] if entry.metadata else []
    return "  ".join(part for part in parts if part)


@dataclass
class EntryList(Report):
    """``castore ls NAMESPACE``: its entries in key order, each with what it holds."""

    namespace: str
    entries: Mapping[str, Entry]

    def to_json(self) -> dict[str, Any]:
        return {key: entry.to_json() for key, entry in sorted(self.entries.items())}

    def text_lines(self) -> Iterator[str]:
        rows = [
            (format_time(entry.recorded_at)[:19], human(entry.size), key, _about(entry))
            for key, entry in sorted(self.entries.items())
        ]
        yield from table(("recorded at (UTC)", "size", "key", "about"), rows, "lrll")


def metadata_summary(metadata: Mapping[str, Any], width: int = 80) -> str:
    """``name=value`` pairs of an entry's metadata on one line, values shortened."""
    parts = []
    for name, value in sorted(metadata.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{name}={text[:40] + '…' if len(text) > 40 else text}")
    line = " ".join(parts).replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


@main.command(name="ls")
@click.argument("namespace", required=False, callback=namespace_argument)
@click.option(
    "--top",
    default=5,
    show_default=True,
    help="Without NAMESPACE: how many of the largest entries to list.",
)
@json_option
@click.pass_obj
def list_entries(settings: Settings, namespace: str | None, top: int, as_json: bool) -> None:
    """List namespaces and the largest entries, or the entries of NAMESPACE."""
    store = settings.store()
    if namespace is None:
        namespaces = {ns: store.entries(ns) for ns in store.namespaces()}
        emit(NamespaceList(namespaces, top), as_json=as_json)
        return
    existing_namespace(store, namespace)
    emit(EntryList(namespace, store.entries(namespace)), as_json=as_json)


@main.command()
@click.argument("namespace", callback=namespace_argument)
@click.argument("key")
@click.option("--entry", "with_entry", is_flag=True, help="Also show the index entry.")
@click.pass_obj
def show(settings: Settings, namespace: str, key: str, with_entry: bool) -> None:
    """Show the value recorded for KEY in NAMESPACE as indented JSON.

    bytes, datetimes, tuples and sets are shown as one-key objects naming their type
    ({"$bytes": ...}, {"$datetime": ...}), so what is shown is exactly what is stored.
    """
    store = settings.store()
    existing_namespace(store, namespace)
    entry = store.entry(namespace, key)
    if entry is None:
        fail(
            f"no key {stored_key(key)!r} in namespace {namespace!r} (see `castore ls {namespace}`)"
        )
    value = to_json_view(store.namespace(namespace).read(entry, stored_key(key)))
    emit_json({"entry": entry.to_json(), "value": value} if with_entry else value)


@main.command()
@click.argument("blob")
@click.pass_obj
def cat(settings: Settings, blob: str) -> None:
    """Show a blob, by digest or by file, as indented JSON (the git diff driver's textconv).

    A digest is found loose or in a pack. A file may be a copy outside the store, as git
    hands one over; dictionaries come from the store. A git-lfs pointer is shown as such.
    """
    blob_file = Path(blob)
    if is_digest(blob) and not blob_file.exists():
        emit_json(to_json_view(settings.store().read_blob(blob)))
        return
    if not blob_file.is_file():
        raise click.BadParameter(f"{blob!r} is neither a blob digest nor a file", param_hint="BLOB")
    holding = store_holding(blob_file)
    store = Store(holding) if holding else settings.store(must_exist=False)
    blobs = internals(store).reader
    frame = blobs.read_file(blob_file)
    try:
        value = blobs.decode_file(frame, blob_file)
    except LfsPointerError:
        click.echo("git-lfs pointer (object not downloaded; run `git lfs pull`):")
        click.echo(frame.decode("utf-8", "replace").rstrip())
        return
    emit_json(to_json_view(value))
