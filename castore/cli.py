"""The ``castore`` command: each subcommand is a thin layer over the store and maintenance.

Exit codes: 0 success; 1 faults found (``verify``), a merge conflict (``git
merge-index``) or nothing to show; 2 a usage error; 3 a store that cannot be read or
written (a castore error: the message says what and where).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from castore import cli_remote
from castore._storage.blobs.loose import store_holding
from castore._storage.index import format_time
from castore._storage.layout import DEFAULT_ROOT, MAX_INDEX_BYTES, is_digest
from castore._storage.names import stored_key
from castore._storage.safe_files import FileRefused, read_user_file
from castore._storage.store import Store, internals
from castore._upkeep import collect, diff_report, packing
from castore._upkeep import git as _git
from castore._upkeep import stats as store_stats
from castore._upkeep import verify as store_verify
from castore._upkeep.importers import export_namespace, import_paths
from castore._upkeep.jsonview import to_json_view
from castore._upkeep.project import config_lines, default_store_root
from castore._upkeep.retraining import DEFAULT_DICTIONARY_SIZE, train_dictionary
from castore._upkeep.revisions import WorkingTreeStore, revision_store
from castore._upkeep.store_diff import StoreSide, diff_stores
from castore._upkeep.value_diff import PatternError, parse_pattern
from castore.errors import CastoreError, ImportFormatError, LfsPointerError
from castore.integrations.vcr import migrate_cassettes

T = TypeVar("T")
EXIT_FAULTS = 1
EXIT_STORE_ERROR = 3


class StoreProblem(click.ClickException):
    """A castore error, shown as its message with exit code 3."""

    exit_code = EXIT_STORE_ERROR


@dataclass
class Settings:
    root_option: Path | None

    @property
    def root(self) -> Path:
        return (self.root_option or default_store_root()).absolute()

    def store(self, *, must_exist: bool = True) -> Store:
        root = self.root
        if must_exist and not root.is_dir():
            raise StoreProblem(
                f"no store at {root}: record something first, or pass --root "
                f"(default: castore_root in the project's pytest configuration)"
            )
        try:
            return Store(root)
        except CastoreError as error:
            raise StoreProblem(str(error)) from None


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal and the work is long."""
    if total < 200 or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, length=total, label=label, file=sys.stderr) as bar:
        yield from bar


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def fail(message: str, code: int = EXIT_FAULTS) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


class CastoreGroup(click.Group):
    """Runs a subcommand so that no failure reaches the user as a raw traceback.

    A castore error is shown as its message. A file-system error castore did not wrap
    yet, or running out of memory, says what happened and where. Anything else is a bug
    in castore: one line says so and how to see the traceback (``CASTORE_DEBUG=1``).
    All of them exit with code 3.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `castore ls | head`: the reader left, nothing went wrong
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except CastoreError as error:
            raise StoreProblem(str(error)) from None
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise StoreProblem(
                f"the file system refused: {error.strerror or error}{where}. Nothing was "
                "changed by the failed step; fix the cause and run the command again"
            ) from None
        except MemoryError:
            raise StoreProblem(
                "castore ran out of memory; the store may hold a value too large for this "
                "machine (castore stats lists the largest entries)"
            ) from None
        except Exception as error:
            if os.environ.get("CASTORE_DEBUG"):
                raise
            raise StoreProblem(
                f"internal error, a bug in castore ({type(error).__name__}: {error}). Please "
                "report it with the output of the same command run with CASTORE_DEBUG=1"
            ) from None


@click.group(
    cls=CastoreGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok; 1 faults or conflicts found; 2 usage error; 3 store error.",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="CASTORE_ROOT",
    help="The store directory. Default: castore_root from the project's pytest "
    f"configuration, else {DEFAULT_ROOT}. Env: CASTORE_ROOT.",
)
@click.version_option(package_name="castore")
@click.pass_context
def main(context: click.Context, root: Path | None) -> None:
    """Inspect and maintain a castore store of recorded responses."""
    context.obj = Settings(root)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _namespace_argument(
    _context: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    """A namespace, or the test file whose namespace it is: ``tests/test_x.py`` (or
    ``./tests/test_x.py``, or a Windows path) means ``tests/test_x``, as the pytest
    plugin names a module's namespace."""
    return None if value is None else _namespace_name(value)


def _namespace_name(value: str) -> str:
    text = value.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.removesuffix(".py")


def _existing_namespace(store: Store, namespace: str) -> None:
    """Fail with the same message everywhere when ``namespace`` has no index."""
    if namespace not in store.namespaces():
        fail(f"no namespace {namespace!r} in {store.root} (see `castore ls`)")


@main.command()
@json_option
@click.option("--top", default=10, show_default=True, help="How many of the largest entries.")
@click.pass_obj
def stats(settings: Settings, as_json: bool, top: int) -> None:
    """Namespaces, entries, blobs, bytes, dedup and compression, the largest entries."""
    result = store_stats.store_stats(settings.store(), top=top, progress=progress)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(f"store          {settings.root}")
    click.echo(f"namespaces     {result.namespaces:,}")
    click.echo(f"entries        {result.entries:,}")
    click.echo(f"blobs          {result.blobs:,}  ({result.orphans:,} orphaned)")
    if result.packs:
        click.echo(
            f"packs          {result.packs:,} holding {result.packed_blobs:,} blobs, "
            f"{human(result.pack_bytes)} (their indexes {human(result.pack_index_bytes)}); "
            f"{result.blobs - result.packed_blobs:,} loose"
        )
    click.echo(
        f"on disk        {human(result.bytes)}  (blob frames {human(result.blob_bytes)}, "
        f"indexes {human(result.index_bytes)})"
    )
    click.echo(f"uncompressed   {human(result.uncompressed_bytes)} of distinct values")
    click.echo(
        f"dedup          {result.dedup_ratio:.2f}x  ({human(result.logical_bytes)} of entries "
        f"stored as {human(result.uncompressed_bytes)})"
    )
    click.echo(f"compression    {result.compression_ratio:.2f}x")
    if result.largest:
        click.echo("largest entries:")
        for item in result.largest:
            click.echo(f"  {human(item['size']):>10}  {item['namespace']} :: {item['key']}")


@main.command(name="ls")
@click.argument("namespace", required=False, callback=_namespace_argument)
@json_option
@click.pass_obj
def list_entries(settings: Settings, namespace: str | None, as_json: bool) -> None:
    """List namespaces, or the entries of NAMESPACE."""
    store = settings.store()
    if namespace is None:
        rows = [(ns, store.entries(ns)) for ns in store.namespaces()]
        if as_json:
            emit_json([{"namespace": ns, "entries": len(entries)} for ns, entries in rows])
            return
        for ns, entries in rows:
            click.echo(f"{len(entries):>6}  {ns}")
        return
    _existing_namespace(store, namespace)
    entries = store.entries(namespace)
    if as_json:
        emit_json({key: entry.to_json() for key, entry in sorted(entries.items())})
        return
    for key, entry in sorted(entries.items()):
        extras = [f"{entry.duration:.1f} s" if entry.duration is not None else ""]
        extras += [f"stream={entry.stream}" if entry.stream else ""]
        extras += [f"schema={entry.schema}" if entry.schema is not None else ""]
        # A hashed key (request_key) says nothing: its metadata says what was asked.
        extras += [_metadata_summary(entry.metadata)] if entry.metadata else []
        detail = "  ".join(part for part in extras if part)
        click.echo(
            f"{format_time(entry.recorded_at)[:19]}  {human(entry.size):>10}  {key}  {detail}"
        )


def _metadata_summary(metadata: Mapping[str, Any], width: int = 80) -> str:
    """``name=value`` pairs of an entry's metadata on one line, values shortened."""
    parts = []
    for name, value in sorted(metadata.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{name}={text[:40] + '…' if len(text) > 40 else text}")
    line = " ".join(parts).replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


@main.command()
@click.argument("namespace", callback=_namespace_argument)
@click.argument("key")
@click.option("--entry", "with_entry", is_flag=True, help="Also show the index entry.")
@click.pass_obj
def show(settings: Settings, namespace: str, key: str, with_entry: bool) -> None:
    """Show the value recorded for KEY in NAMESPACE as indented JSON.

    bytes, datetimes, tuples and sets are shown as one-key objects naming their type
    ({"$bytes": ...}, {"$datetime": ...}), so what is shown is exactly what is stored.
    """
    store = settings.store()
    _existing_namespace(store, namespace)
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


@main.command()
@click.option(
    "--sample",
    type=float,
    help="Check only some blobs' content: a fraction (0.1) or a count (500). "
    "Indexes, references and orphans are always checked in full.",
)
@click.option("--quarantine", is_flag=True, help="Move corrupt blobs to .castore/quarantine/.")
@click.option(
    "--strict", is_flag=True, help="Count orphans and leftover temporary files as faults."
)
@json_option
@click.pass_obj
def verify(
    settings: Settings, sample: float | None, quarantine: bool, strict: bool, as_json: bool
) -> None:
    """Check every digest, every index reference, packs and git-lfs pointers.

    One line per fault; exit code 1 if there is any. Orphan blobs and leftover temporary
    files are upkeep for `castore gc`, listed but not faults, unless --strict.
    """
    result = store_verify.verify(
        settings.store(), sample=sample, quarantine=quarantine, progress=progress
    )
    failing = result.faults + (result.upkeep if strict else [])
    if as_json:
        emit_json(
            {
                "blobs": result.blobs_total,
                "blobs_checked": result.blobs_checked,
                "entries": result.entries,
                "faults": [fault.to_json() for fault in result.faults],
                "upkeep": [fault.to_json() for fault in result.upkeep],
                "quarantined": [str(path) for path in result.quarantined],
            }
        )
    else:
        for fault in result.faults:
            click.echo(f"{fault.kind:<12} {fault.path}: {fault.detail}")
        for fault in result.upkeep:
            click.echo(f"{fault.kind:<12} {fault.path}: {fault.detail} (upkeep, not a fault)")
        for path in result.quarantined:
            click.echo(f"quarantined  {path}")
        upkeep = f"; {len(result.upkeep)} for `castore gc`" if result.upkeep else ""
        click.echo(
            f"checked {result.blobs_checked:,} of {result.blobs_total:,} blobs and "
            f"{result.entries:,} entries: {len(result.faults)} fault(s){upkeep}"
        )
    if failing:
        sys.exit(EXIT_FAULTS)


def _print_collection(collection: collect.Collection, *, dry_run: bool) -> None:
    if collection.unchanged:
        click.echo("the store is as the last gc left it: nothing to collect")
        return
    verb = "would remove" if dry_run else "removed"
    for blob in collection.removed:
        click.echo(f"{verb} {blob.path} ({human(blob.size)})")
    for path in collection.temp_files:
        click.echo(f"{verb} {path} (temporary file of an interrupted write)")
    click.echo(
        f"{verb} {len(collection.removed):,} unreferenced blob(s), "
        f"{human(collection.bytes)}, and {len(collection.temp_files)} temporary file(s)"
    )
    if collection.packed_copies:
        click.echo(f"{verb} {len(collection.packed_copies):,} loose copies of packed blobs")
    if collection.unpaired_packs:
        click.echo(f"{verb} {len(collection.unpaired_packs):,} pack(s) no .idx names")
    rewrite = collection.packing
    if rewrite.removed_packs:
        did = "would rewrite" if dry_run else "rewrote"
        click.echo(
            f"{did} {len(rewrite.removed_packs)} pack(s) past the unused threshold"
            + ("" if dry_run else f" into {len(rewrite.written)} ({human(rewrite.pack_bytes)})")
        )
    if collection.dead_packed:
        click.echo(
            f"kept {collection.dead_packed:,} unreferenced blob(s) inside packs under the "
            "threshold (--max-unused, or `castore pack --repack`, drops them)"
        )


def _share(text: str) -> float:
    """A share given as ``10%`` or ``0.1``."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a share such as 10% or 0.1") from None
    if not 0 <= value <= 1:
        raise click.BadParameter(f"{text!r} is not between 0% and 100%")
    return value


@main.command()
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
@click.option(
    "--max-unused",
    default=f"{packing.DEFAULT_MAX_UNUSED:.0%}",
    show_default=True,
    help="Rewrite a pack once more than this share of its bytes is unreferenced.",
)
@click.option("--remote", metavar="NAME", help="Collect on this remote instead (see --ref).")
@click.option("--ref", "refs", multiple=True, help="With --remote: keep what these refs use.")
@click.option(
    "--grace",
    default=cli_remote.DEFAULT_GRACE_TEXT,
    show_default=True,
    help="With --remote: keep objects younger than this (14d, 12h, 0).",
)
@json_option
@click.pass_obj
def gc(
    settings: Settings,
    *,
    dry_run: bool,
    max_unused: str,
    remote: str | None,
    refs: tuple[str, ...],
    grace: str,
    as_json: bool,
) -> None:
    """Delete blobs no index refers to (as `git lfs prune` does), and leftover temp files.

    Loose blobs go at once. Packed ones go when their pack is rewritten: only packs whose
    unreferenced share passes --max-unused, so one deletion does not re-upload a pack.
    With --remote NAME, delete the remote's objects that no index at any git ref (all
    branches and tags, or --ref) nor the working tree uses, once older than --grace."""
    if remote:
        cli_remote.gc_remote(
            settings, remote=remote, refs=refs, grace=grace, dry_run=dry_run, as_json=as_json
        )
        return
    collection = collect.collect_garbage(
        settings.store(), dry_run=dry_run, max_unused=_share(max_unused), progress=progress
    )
    if as_json:
        emit_json(_collection_json(collection, dry_run))
    else:
        _print_collection(collection, dry_run=dry_run)


def _collection_json(collection: collect.Collection, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "blobs": [blob.digest for blob in collection.removed],
        "bytes": collection.bytes,
        "temp_files": [str(path) for path in collection.temp_files],
        "packs_rewritten": collection.packing.removed_packs,
        "packs_written": [index.name for index in collection.packing.written],
        "dead_packed_blobs": collection.dead_packed,
        "unpaired_packs": collection.unpaired_packs,
        "unchanged": collection.unchanged,
    }


def _byte_size(text: str) -> int:
    """A size such as ``8MiB``, ``512KiB`` or ``1000000``."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "b": 1}
    lowered = text.strip().lower()
    unit = next((unit for unit in units if lowered.endswith(unit)), "")
    number, factor = lowered.removesuffix(unit) if unit else lowered, units.get(unit, 1)
    try:
        size = int(float(number) * factor)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size such as 8MiB") from None
    if size < 1:
        raise click.BadParameter(f"{text!r} is not a positive size")
    return size


@main.command()
@click.option("--repack", is_flag=True, help="Rewrite every pack, not only new blobs.")
@click.option(
    "--target-size",
    default="8MiB",
    show_default=True,
    help="Close a pack once its frames reach this size. Keep the default where several "
    "machines pack one store: packs are byte-identical only for the same target.",
)
@json_option
@click.pass_obj
def pack(settings: Settings, repack: bool, target_size: str, as_json: bool) -> None:
    """Move loose blobs into packs: a few large LFS objects instead of thousands of tiny ones.

    Packs are deterministic (the same blobs give the same bytes) and never appended to:
    blobs recorded later go into a new small pack. The first pack of a store without a
    zstd dictionary trains one. Run `castore gc` afterwards to drop unreferenced blobs."""
    report = packing.pack_store(
        settings.store(), repack=repack, target_bytes=_byte_size(target_size), progress=progress
    )
    if as_json:
        emit_json(
            {
                "packs_written": [index.name for index in report.written],
                "packs_removed": report.removed_packs,
                "blobs_packed": report.blobs_packed,
                "loose_removed": report.loose_removed,
                "loose_bytes": report.loose_bytes,
                "pack_bytes": report.pack_bytes,
                "dictionary_trained": report.dictionary,
                "packs_merged": report.merged,
            }
        )
        return
    if not report.written:
        click.echo("nothing to pack: every referenced blob is already in a pack")
        return
    if report.dictionary is not None:
        click.echo(f"trained zstd dictionary {report.dictionary} on the store's values")
    for index in report.written:
        click.echo(f"pack {index.name[:16]}… {len(index.slots):,} blobs, {human(index.size)}")
    click.echo(
        f"packed {report.blobs_packed:,} blobs into {len(report.written)} pack(s), "
        f"{human(report.pack_bytes)} (their loose files took {human(report.loose_bytes)})"
        + (f"; replaced {len(report.removed_packs)} old pack(s)" if report.removed_packs else "")
        + (f", merging {len(report.merged)} young pack(s)" if report.merged else "")
    )


def _confirm_destructive(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(
            "this deletes recordings: pass --yes to confirm (or --dry-run to look first)"
        )
    if not click.confirm(question, default=False):
        fail("nothing changed", code=0)


@main.command()
@click.option("--dry-run", is_flag=True, help="Print what would be dropped; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def prune(settings: Settings, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Drop the entries the last complete test run did not use, then gc.

    The pytest plugin saves, after each run, which entries no test asked for in the
    namespaces it could judge (docs/pytest-plugin.md); entries recorded since are kept.
    """
    store = settings.store()
    preview = collect.prune(store, dry_run=True)
    if not dry_run and preview.dropped:
        if not as_json:
            for namespace, key in preview.dropped:
                click.echo(f"will drop {namespace} :: {key}")
        _confirm_destructive(yes, f"Drop {len(preview.dropped)} entries?")
    result = preview if dry_run else collect.prune(store)
    if as_json:
        emit_json(
            {
                "dropped": [{"namespace": ns, "key": key} for ns, key in result.dropped],
                "gc": _collection_json(result.collection, dry_run),
            }
        )
        return
    if not result.ever_judged:
        click.echo("no test run has judged this store yet: run the test suite first")
    verb = "would drop" if dry_run else "dropped"
    for namespace, key in result.dropped:
        click.echo(f"{verb} {namespace} :: {key}")
    click.echo(
        f"{verb} {len(result.dropped)} unused entr{'y' if len(result.dropped) == 1 else 'ies'}"
    )
    _print_collection(result.collection, dry_run=dry_run)


@main.command()
@click.argument("namespace", callback=_namespace_argument)
@click.argument("keys", nargs=-1)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(settings: Settings, namespace: str, keys: tuple[str, ...], yes: bool) -> None:
    """Delete KEYS from NAMESPACE, or the whole namespace; `castore gc` frees the blobs."""
    store = settings.store()
    _existing_namespace(store, namespace)
    present = store.entries(namespace)
    doomed = [stored_key(key) for key in keys] if keys else sorted(present)
    missing = [key for key in doomed if key not in present]
    if missing or not present:
        fail(f"not in namespace {namespace!r}: {', '.join(missing) or 'any key'}")
    _confirm_destructive(yes, f"Delete {len(doomed)} entries of {namespace}?")
    with store.batch():
        for key in doomed:
            store.delete(namespace, key)
    click.echo(f"deleted {len(doomed)} entr{'y' if len(doomed) == 1 else 'ies'} of {namespace}")


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--prefix", default="", help="Prefix for the namespaces, e.g. 'vcr/'.")
@click.option("--dry-run", is_flag=True, help="Read and count; write nothing.")
@click.option(
    "--vcr-cassettes",
    is_flag=True,
    help="Rewrite VCR.py cassettes in place as castore cassettes (for castore_vcr = true).",
)
@json_option
@click.pass_obj
def import_command(
    settings: Settings,
    *,
    paths: tuple[Path, ...],
    prefix: str,
    dry_run: bool,
    as_json: bool,
    vcr_cassettes: bool,
) -> None:
    """Import recorder fixture files (JSON) and VCR.py cassettes (YAML/JSON).

    Directories are searched recursively; the format is detected per file. See
    docs/cli.md for the layouts accepted and how keys and namespaces are chosen. With
    --vcr-cassettes, VCR.py cassettes are instead rewritten in place as castore cassettes
    (bodies into the store, for `castore_vcr = true`), and keep replaying under VCR.py.
    """
    if vcr_cassettes:
        _migrate_vcr_cassettes(settings, paths, dry_run=dry_run)
        return
    try:
        report = import_paths(
            settings.store(must_exist=False), paths, prefix=prefix, dry_run=dry_run
        )
    except ImportFormatError as error:
        raise StoreProblem(f"cannot import {error}") from None
    if as_json:
        emit_json(
            {
                "files": [
                    {
                        "path": str(item.path),
                        "format": item.kind,
                        "namespace": item.namespace,
                        "entries": item.entries,
                        "repeats": item.repeats,
                    }
                    for item in report.files
                ],
                "entries": report.entries,
                "skipped": [{"path": str(path), "why": why} for path, why in report.skipped],
            }
        )
        return
    for item in report.files:
        repeats = f" ({item.repeats} repeated request(s) kept in order)" if item.repeats else ""
        click.echo(f"{item.kind:<15} {item.path} -> {item.namespace}: {item.entries}{repeats}")
    for path, why in report.skipped:
        click.echo(f"skipped         {path}: {why}")
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {report.entries:,} entries from {len(report.files):,} file(s)")


def _migrate_vcr_cassettes(settings: Settings, paths: tuple[Path, ...], *, dry_run: bool) -> None:
    cassettes = sorted(
        {
            found
            for path in paths
            for found in (
                [path] if path.is_file() else [*path.rglob("*.yaml"), *path.rglob("*.yml")]
            )
        }
    )
    if dry_run:
        click.echo(f"would migrate {len(cassettes):,} cassette file(s)")
        return
    try:
        migrated = migrate_cassettes(cassettes, settings.store(must_exist=False), Path.cwd())
    except ImportError:
        raise StoreProblem("--vcr-cassettes needs VCR.py: pip install vcrpy") from None
    except (ValueError, KeyError) as error:
        raise StoreProblem(f"cannot migrate a cassette: {error}") from None
    for path, count in migrated:
        click.echo(f"migrated {path}: {count} interaction(s)")
    click.echo(f"migrated {len(migrated):,} of {len(cassettes):,} cassette file(s)")


@main.command()
@click.argument("namespace", callback=_namespace_argument)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write (default: stdout).",
)
@click.pass_obj
def export(settings: Settings, namespace: str, output: Path | None) -> None:
    """Write NAMESPACE as plain JSON, in the seeds' {key: {response, metadata}} layout."""
    store = settings.store()
    _existing_namespace(store, namespace)
    text = json.dumps(export_namespace(store, namespace), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.argument("revisions", nargs=-1, metavar="[REV_A [REV_B]]")
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="PATTERN",
    help="A JSON path whose changes do not count, e.g. '$..id' (repeatable; adds to the "
    "ini option castore_diff_ignore).",
)
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Only this namespace.")
@click.option("--stat", is_flag=True, help="One line per namespace.")
@json_option
@click.option("--markdown", is_flag=True, help="A Markdown report, e.g. for a pull request.")
@click.option(
    "--color/--no-color", default=None, help="Colour the text report (default: on a terminal)."
)
@click.pass_obj
def diff(
    settings: Settings,
    *,
    revisions: tuple[str, ...],
    ignore: tuple[str, ...],
    namespaces: tuple[str, ...],
    stat: bool,
    as_json: bool,
    markdown: bool,
    color: bool | None,
) -> None:
    """Show how the recorded answers changed between two revisions.

    With no REV, the working tree against HEAD; with one, that revision against the
    working tree; with two, REV_A against REV_B. Revisions are read from git's objects
    (and git-lfs), so nothing is checked out. Exit code 0 when nothing changed, 1 when
    something did (as `git diff --exit-code`).
    """
    if len(revisions) > 2:
        raise click.UsageError("give at most two revisions: castore diff [REV_A [REV_B]]")
    if sum([stat, as_json, markdown]) > 1:
        raise click.UsageError("choose one of --stat, --json and --markdown")
    patterns = [*config_lines("castore_diff_ignore"), *ignore]
    try:
        parsed = [parse_pattern(pattern) for pattern in dict.fromkeys(patterns)]
    except PatternError as error:
        raise click.UsageError(str(error)) from None
    root = settings.root
    repo, store_path = _git.store_location(root)
    old_revision = revisions[0] if revisions else "HEAD"
    new_revision = revisions[1] if len(revisions) == 2 else None  # None: the working tree
    with contextlib.ExitStack() as stack:
        old = stack.enter_context(revision_store(repo, old_revision, store_path))
        if new_revision is None:
            new: StoreSide = WorkingTreeStore(Store(root) if root.is_dir() else None)
        else:
            new = stack.enter_context(revision_store(repo, new_revision, store_path))
        only = [_namespace_name(name) for name in namespaces] or None
        result = diff_stores(old, new, parsed, namespaces=only)
    if as_json:
        emit_json(diff_report.render_json(result))
    elif markdown:
        click.echo(diff_report.render_markdown(result), nl=False)
    elif stat:
        click.echo(diff_report.render_stat(result), nl=False)
    else:
        use_color = sys.stdout.isatty() if color is None else color
        click.echo(
            diff_report.render_text(result, _diff_style if use_color else diff_report.plain_style),
            nl=False,
            color=use_color,
        )
    if result.has_changes:
        sys.exit(EXIT_FAULTS)


_DIFF_COLOURS = {"removed": "red", "added": "green", "heading": None, "dim": None}


def _diff_style(text: str, role: str) -> str:
    return click.style(text, fg=_DIFF_COLOURS.get(role), bold=role == "heading", dim=role == "dim")


@main.command(name="train-dictionary")
@click.option(
    "--size",
    default=DEFAULT_DICTIONARY_SIZE,
    show_default=True,
    help="Dictionary size in bytes.",
)
@click.option("--level", type=int, help="zstd level for blobs from now on (default: the store's).")
@json_option
@click.pass_obj
def train_dictionary_command(
    settings: Settings, size: int, level: int | None, as_json: bool
) -> None:
    """Train a zstd dictionary on the store's values and recompress every blob with it.

    Small, similar values (LLM responses) compress far better with one. This rewrites every
    blob file (names and contents stay the same; only the compression changes), which git
    and git-lfs see as changes: run it deliberately, then commit. Earlier dictionaries
    stay in castore.json, so every blob stays readable.
    """
    result = train_dictionary(settings.store(), size=size, level=level, progress=progress)
    if as_json:
        emit_json(dataclasses.asdict(result))
        return
    click.echo(
        f"trained dictionary {result.dictionary_id} ({human(result.dictionary_bytes)}) on "
        f"{result.samples:,} values; blob {result.dictionary_blob}"
    )
    click.echo(
        f"recompressed {result.rewritten:,} blobs: {human(result.bytes_before)} -> "
        f"{human(result.bytes_after)} (+ {human(result.dictionary_bytes)} dictionary)"
    )


@main.group(name="git", cls=CastoreGroup)
def git_group() -> None:
    """git integration: attributes, diff driver, index merge driver."""


@git_group.command(name="setup")
@click.option("--lfs/--no-lfs", default=True, show_default=True, help="Track blobs with git-lfs.")
@click.option("--remote", metavar="NAME", help="Keep pack data out of git: remote NAME holds it.")
@click.option("--undo", is_flag=True, help="Remove what setup added.")
@click.pass_obj
def git_setup(settings: Settings, lfs: bool, remote: str | None, undo: bool) -> None:
    """Configure the repository holding the store (idempotent; --undo reverses it).

    Writes a castore block to .gitattributes (blobs: git-lfs unless --no-lfs, binary,
    shown as JSON by `git diff`; indexes: text, merged by castore) and sets the diff and
    merge drivers in .git/config.
    """
    report = _git.undo(settings.root) if undo else _git.setup(settings.root, lfs=lfs, remote=remote)
    for action in report.actions:
        click.echo(action)
    if not report.actions:
        click.echo("already set up; nothing changed" if not undo else "nothing to undo")


@git_group.command(name="show-index", hidden=True)
@click.argument("index_file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def git_show_index(settings: Settings, index_file: Path) -> None:
    """git's textconv for index files: each entry with its value, for `git diff`."""
    store = settings.store(must_exist=False)
    try:
        raw = read_user_file(index_file, MAX_INDEX_BYTES)
    except FileRefused as refused:
        raise StoreProblem(f"{index_file}: {refused.reason}") from None
    click.echo(_git.index_with_values(raw, index_file, store.read_blob), nl=False)


@git_group.command(name="merge-index", hidden=True)
@click.argument("base", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("ours", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("theirs", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("name", default="index")
def git_merge_index(base: Path, ours: Path, theirs: Path, name: str) -> None:
    """git's merge driver for index files: castore git merge-index %O %A %B %P."""
    try:
        conflicts = _git.merge_index_files(base, ours, theirs, name)
    except CastoreError as error:
        fail(f"castore: cannot merge {name}: {error}", code=2)
    for conflict in conflicts:
        click.echo(_git.describe_conflict(conflict, name), err=True)
    if conflicts:
        sys.exit(EXIT_FAULTS)


def _set_root(context: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        context.ensure_object(Settings).root_option = value


def _accept_root_everywhere(group: click.Group) -> None:
    """``--root`` works after the subcommand too (``castore stats --root DIR``), as before
    it: the group has already made the settings when a subcommand's options are read."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_root_everywhere(command)
            continue
        if any("--root" in param.opts for param in command.params):
            continue
        command.params.append(
            click.Option(
                ["--root"],
                type=click.Path(path_type=Path, file_okay=False),
                expose_value=False,
                callback=_set_root,
                help="The store directory (as `castore --root DIR …`).",
            )
        )


for _command in cli_remote.COMMANDS:  # the remote tier's commands live in their own module
    main.add_command(_command)
_accept_root_everywhere(main)
