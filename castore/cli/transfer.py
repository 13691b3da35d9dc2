"""Moving recordings in and out: ``import`` (fixture files, castore exports, VCR.py
cassettes; ``--vcr-cassettes`` rewrites cassettes in place) and ``export``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from castore._upkeep.importers import ImportReport, export_namespace, import_paths
from castore.cli.app import (
    Settings,
    StoreProblem,
    existing_namespace,
    json_option,
    main,
    namespace_argument,
)
from castore.cli.reports import Report, emit
from castore.errors import ImportFormatError
from castore.integrations.http.cassettes import (
    ImportedCassette,
    import_cassettes,
    module_namespace,
)
from castore.integrations.vcr import CastorePersister, migrate_cassettes


@dataclass
class ImportSummary(Report):
    report: ImportReport
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
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

    def text_lines(self) -> Iterator[str]:
        report = self.report
        for item in report.files:
            repeats = f" ({item.repeats} repeated request(s) kept in order)" if item.repeats else ""
            yield f"{item.kind:<15} {item.path} -> {item.namespace}: {item.entries}{repeats}"
        for path, why in report.skipped:
            yield f"skipped         {path}: {why}"
        verb = "would import" if self.dry_run else "imported"
        yield f"{verb} {report.entries:,} entries from {len(report.files):,} file(s)"


@dataclass
class MigrationReport(Report):
    """``import --vcr-cassettes``: the cassettes rewritten, and how many were found."""

    migrated: list[tuple[Path, int]]
    found: int
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "found": self.found,
            "migrated": [
                {"path": str(path), "interactions": count} for path, count in self.migrated
            ],
        }

    def text_lines(self) -> Iterator[str]:
        if self.dry_run:
            yield f"would migrate {self.found:,} cassette file(s)"
            return
        for path, count in self.migrated:
            yield f"migrated {path}: {count} interaction(s)"
        yield f"migrated {len(self.migrated):,} of {self.found:,} cassette file(s)"


@dataclass
class HttpImportReport(Report):
    """``import --vcr-cassettes --as-http``: cassettes recorded as castore_http would."""

    imported: list[ImportedCassette]
    removed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "cassettes": [
                {
                    "path": str(item.cassette),
                    "namespace": item.namespace,
                    "recordings": item.recordings,
                }
                for item in self.imported
            ],
            "recordings": sum(item.recordings for item in self.imported),
            "cassettes_removed": self.removed,
        }

    def text_lines(self) -> Iterator[str]:
        for item in self.imported:
            yield f"{item.cassette} -> {item.namespace}: {item.recordings} recording(s)"
        total = sum(item.recordings for item in self.imported)
        cassettes = len(self.imported)
        yield f"recorded {total:,} request(s) from {cassettes:,} cassette(s) for castore_http"
        namespaces = sorted({item.namespace for item in self.imported})
        if namespaces:
            shown = ", ".join(namespaces[:3]) + ("…" if len(namespaces) > 3 else "")
            yield (
                f"next: mark the tests of {shown} @pytest.mark.castore_http instead of "
                "@pytest.mark.vcr" + ("" if self.removed else ", then delete the cassettes")
            )


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--prefix", default="", help="Prefix for the namespaces, e.g. 'vcr/'.")
@click.option("--dry-run", is_flag=True, help="Read and count; write nothing.")
@click.option(
    "--vcr-cassettes",
    is_flag=True,
    help="Rewrite VCR.py cassettes in place as castore cassettes (for castore_vcr = true).",
)
@click.option(
    "--as-http",
    is_flag=True,
    help="With --vcr-cassettes: record each interaction as castore_http would, in the "
    "namespace of the test module the cassette belongs to (leaving VCR.py behind).",
)
@click.option(
    "--remove-cassettes",
    is_flag=True,
    help="With --as-http: delete each cassette once its interactions are recorded.",
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
    as_http: bool,
    remove_cassettes: bool,
) -> None:
    """Import recorder fixture files (JSON) and VCR.py cassettes (YAML/JSON).

    Directories are searched recursively; the format is detected per file. See
    docs/cli.md for the layouts accepted and how keys and namespaces are chosen. With
    --vcr-cassettes, VCR.py cassettes are instead rewritten in place as castore cassettes
    (bodies into the store, for `castore_vcr = true`), and keep replaying under VCR.py;
    with --as-http too, each interaction becomes a castore_http recording instead.
    """
    if (as_http or remove_cassettes) and not vcr_cassettes:
        raise click.UsageError("--as-http and --remove-cassettes go with --vcr-cassettes")
    if remove_cassettes and not as_http:
        raise click.UsageError("--remove-cassettes goes with --as-http")
    if as_http:
        emit(
            _cassettes_to_http(settings, paths, remove=remove_cassettes, dry_run=dry_run),
            as_json=as_json,
        )
        return
    if vcr_cassettes:
        emit(_migrate_vcr_cassettes(settings, paths, dry_run=dry_run), as_json=as_json)
        return
    try:
        report = import_paths(
            settings.store(must_exist=False), paths, prefix=prefix, dry_run=dry_run
        )
    except ImportFormatError as error:
        raise StoreProblem(f"cannot import {error}") from None
    emit(ImportSummary(report, dry_run), as_json=as_json)


def _cassettes_to_http(
    settings: Settings, paths: tuple[Path, ...], *, remove: bool, dry_run: bool
) -> HttpImportReport:
    cassettes = _cassette_files(paths)
    try:
        from vcr.persisters.filesystem import FilesystemPersister  # noqa: PLC0415
        from vcr.serializers import yamlserializer  # noqa: PLC0415
    except ImportError:
        raise StoreProblem("--vcr-cassettes needs VCR.py: pip install vcrpy") from None
    store = settings.store(must_exist=False)
    root = Path.cwd()
    if dry_run:
        return HttpImportReport(
            [ImportedCassette(path, module_namespace(path, root), 0) for path in cassettes],
            removed=False,
        )
    persister = CastorePersister(store, root)
    try:
        imported = import_cassettes(
            cassettes,
            store,
            lambda path: (
                persister.load_cassette(path, yamlserializer)[:2]
                if _is_castore_cassette(path)
                else FilesystemPersister.load_cassette(path, yamlserializer)
            ),
            namespace_of=lambda path: module_namespace(path, root),
        )
    except (ImportFormatError, ValueError, KeyError) as error:
        raise StoreProblem(f"cannot import a cassette: {error}") from None
    if remove:
        for item in imported:
            item.cassette.unlink(missing_ok=True)
    return HttpImportReport(imported, removed=remove)


def _is_castore_cassette(path: Path) -> bool:
    return "castore_cassette" in path.read_text(encoding="utf-8")[:200]


def _cassette_files(paths: tuple[Path, ...]) -> list[Path]:
    return sorted(
        {
            found
            for path in paths
            for found in (
                [path] if path.is_file() else [*path.rglob("*.yaml"), *path.rglob("*.yml")]
            )
        }
    )


def _migrate_vcr_cassettes(
    settings: Settings, paths: tuple[Path, ...], *, dry_run: bool
) -> MigrationReport:
    cassettes = _cassette_files(paths)
    if dry_run:
        return MigrationReport([], len(cassettes), dry_run=True)
    try:
        migrated = migrate_cassettes(cassettes, settings.store(must_exist=False), Path.cwd())
    except ImportError:
        raise StoreProblem("--vcr-cassettes needs VCR.py: pip install vcrpy") from None
    except (ValueError, KeyError) as error:
        raise StoreProblem(f"cannot migrate a cassette: {error}") from None
    return MigrationReport(migrated, len(cassettes), dry_run=False)


@main.command()
@click.argument("namespace", callback=namespace_argument)
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
    existing_namespace(store, namespace)
    text = json.dumps(export_namespace(store, namespace), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
