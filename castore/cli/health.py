"""Keeping a store small: ``gc``, ``prune``, ``delete``, ``pack`` and ``train-dictionary``.
The work is done in ``castore._upkeep``; these commands parse, ask before deleting, and
report. (``verify``, which keeps it sound, has a module of its own.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from castore._storage.names import stored_key
from castore._storage.value_limit import parse_size
from castore._upkeep import collect, packing
from castore._upkeep.retraining import DEFAULT_DICTIONARY_SIZE, Training, train_dictionary
from castore.cli.app import (
    Settings,
    confirm_destructive,
    existing_namespace,
    fail,
    json_option,
    main,
    namespace_argument,
    progress,
)
from castore.cli.remote import DEFAULT_GRACE_TEXT, collect_on_remote
from castore.cli.reports import Report, emit, human
from castore.errors import StoreError

# --- gc ----------------------------------------------------------------------------


@dataclass
class CollectionReport(Report):
    """What ``gc`` removed (or, dry, would remove); also the second half of ``prune``."""

    collection: collect.Collection
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        collection = self.collection
        return {
            "dry_run": self.dry_run,
            "blobs": [blob.digest for blob in collection.removed],
            "bytes": collection.bytes,
            "temp_files": [str(path) for path in collection.temp_files],
            "packs_rewritten": collection.packing.removed_packs,
            "packs_written": [index.name for index in collection.packing.written],
            "dead_packed_blobs": collection.dead_packed,
            "unpaired_packs": collection.unpaired_packs,
            "unchanged": collection.unchanged,
            "cut_frames": collection.cut_frames,
        }

    def text_lines(self) -> Iterator[str]:
        collection, dry_run = self.collection, self.dry_run
        if collection.unchanged:
            yield "the store is as the last gc left it: nothing to collect"
            return
        verb = "would remove" if dry_run else "removed"
        for blob in collection.removed:
            yield f"{verb} {blob.path} ({human(blob.size)})"
        for path in collection.temp_files:
            yield f"{verb} {path} (temporary file of an interrupted write)"
        yield (
            f"{verb} {len(collection.removed):,} unreferenced blob(s), "
            f"{human(collection.bytes)}, and {len(collection.temp_files)} temporary file(s)"
        )
        if collection.packed_copies:
            yield f"{verb} {len(collection.packed_copies):,} loose copies of packed blobs"
        if collection.unpaired_packs:
            yield f"{verb} {len(collection.unpaired_packs):,} pack(s) no .idx names"
        if collection.cut_frames:
            yield f"{verb} {collection.cut_frames:,} frame(s) cut from remote packs, now unused"
        rewrite = collection.packing
        if rewrite.removed_packs:
            did = "would rewrite" if dry_run else "rewrote"
            into = "" if dry_run else f" into {len(rewrite.written)} ({human(rewrite.pack_bytes)})"
            yield f"{did} {len(rewrite.removed_packs)} pack(s) past the unused threshold{into}"
        if collection.dead_packed:
            yield (
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
    default=DEFAULT_GRACE_TEXT,
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
        collect_on_remote(
            settings, remote=remote, refs=refs, grace=grace, dry_run=dry_run, as_json=as_json
        )
        return
    collection = collect.collect_garbage(
        settings.store(), dry_run=dry_run, max_unused=_share(max_unused), progress=progress
    )
    emit(CollectionReport(collection, dry_run), as_json=as_json)


# --- prune and delete ----------------------------------------------------------------


@dataclass
class PruneReport(Report):
    pruning: collect.Pruning
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "dropped": [{"namespace": ns, "key": key} for ns, key in self.pruning.dropped],
            "gc": CollectionReport(self.pruning.collection, self.dry_run).to_json(),
        }

    def text_lines(self) -> Iterator[str]:
        pruning = self.pruning
        if not pruning.ever_judged:
            yield "no test run has judged this store yet: run the test suite first"
        verb = "would drop" if self.dry_run else "dropped"
        for namespace, key in pruning.dropped:
            yield f"{verb} {namespace} :: {key}"
        yield f"{verb} {len(pruning.dropped)} unused {_entries(len(pruning.dropped))}"
        yield from CollectionReport(pruning.collection, self.dry_run).text_lines()


def _entries(count: int) -> str:
    return "entry" if count == 1 else "entries"


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
        confirm_destructive(yes, f"Drop {len(preview.dropped)} entries?")
    result = preview if dry_run else collect.prune(store)
    emit(PruneReport(result, dry_run), as_json=as_json)


@dataclass
class DeleteReport(Report):
    namespace: str
    keys: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "deleted": self.keys}

    def text_lines(self) -> Iterator[str]:
        yield f"deleted {len(self.keys)} {_entries(len(self.keys))} of {self.namespace}"


@main.command()
@click.argument("namespace", callback=namespace_argument)
@click.argument("keys", nargs=-1)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def delete(
    settings: Settings, namespace: str, keys: tuple[str, ...], yes: bool, as_json: bool
) -> None:
    """Delete KEYS from NAMESPACE, or the whole namespace; `castore gc` frees the blobs."""
    store = settings.store()
    existing_namespace(store, namespace)
    present = store.entries(namespace)
    doomed = [stored_key(key) for key in keys] if keys else sorted(present)
    missing = [key for key in doomed if key not in present]
    if missing or not present:
        fail(f"not in namespace {namespace!r}: {', '.join(missing) or 'any key'}")
    confirm_destructive(yes, f"Delete {len(doomed)} entries of {namespace}?")
    with store.batch():
        for key in doomed:
            store.delete(namespace, key)
    emit(DeleteReport(namespace, doomed), as_json=as_json)


# --- pack and train-dictionary -------------------------------------------------------


@dataclass
class PackReport(Report):
    packing: packing.Packing

    def to_json(self) -> dict[str, Any]:
        report = self.packing
        return {
            "packs_written": [index.name for index in report.written],
            "packs_removed": report.removed_packs,
            "blobs_packed": report.blobs_packed,
            "loose_removed": report.loose_removed,
            "loose_bytes": report.loose_bytes,
            "pack_bytes": report.pack_bytes,
            "dictionary_trained": report.dictionary,
            "packs_merged": report.merged,
        }

    def text_lines(self) -> Iterator[str]:
        report = self.packing
        if not report.written:
            yield "nothing to pack: every referenced blob is already in a pack"
            return
        if report.dictionary is not None:
            yield f"trained zstd dictionary {report.dictionary} on the store's values"
        for index in report.written:
            yield f"pack {index.name[:16]}… {len(index.slots):,} blobs, {human(index.size)}"
        replaced = (
            f"; replaced {len(report.removed_packs)} old pack(s)" if report.removed_packs else ""
        ) + (f", merging {len(report.merged)} young pack(s)" if report.merged else "")
        yield (
            f"packed {report.blobs_packed:,} blobs into {len(report.written)} pack(s), "
            f"{human(report.pack_bytes)} (their loose files took {human(report.loose_bytes)})"
            + replaced
        )


def _byte_size(text: str) -> int:
    """A size such as ``8MiB``, ``512KiB`` or ``1000000``, read as the ini options'
    sizes are (:func:`parse_size`)."""
    try:
        size = parse_size(text)
    except StoreError:
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
    emit(PackReport(report), as_json=as_json)


@dataclass
class TrainingReport(Report):
    training: Training

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self.training)

    def text_lines(self) -> Iterator[str]:
        result = self.training
        yield (
            f"trained dictionary {result.dictionary_id} ({human(result.dictionary_bytes)}) on "
            f"{result.samples:,} values; blob {result.dictionary_blob}"
        )
        yield (
            f"recompressed {result.rewritten:,} blobs: {human(result.bytes_before)} -> "
            f"{human(result.bytes_after)} (+ {human(result.dictionary_bytes)} dictionary)"
        )


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
    emit(TrainingReport(result), as_json=as_json)
