"""Bringing existing recordings in (and writing a namespace back out as plain JSON).

Two source formats, detected per file:

* **The seeds' fixture files**: one JSON object per recorder, ``{key: {"response": …,
  "original_key": …, "metadata": {…}}}``, as their ``ResponseRecorder`` writes it. Each
  entry is imported under its ``original_key`` (so the seeds' ``hash_…`` keys become the
  keys the tests actually pass), into a namespace named after the file
  (``ir_responses.json`` -> ``ir_responses``). ``castore export`` writes this layout too,
  plus a ``$castore_export`` header and typed values, so export -> import is exact.
* **VCR.py cassettes** (YAML, or JSON with ``interactions``): each interaction becomes an
  entry whose value is the recorded response (status, headers, body, exactly as in the
  cassette) and whose key is derived from the request (:func:`vcr_request_key`). A
  cassette that repeats a request keeps every response, in order, as ``key``,
  ``key#2``, ``key#3``… as VCR.py replays them. The namespace is the cassette's path
  relative to the imported directory, without its extension.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from castore._recording.request_keys import request_key
from castore._storage.codec import digest, pack_value
from castore._storage.index import Entry, check_metadata, entry_from_json, format_time, now
from castore._storage.names import check_new_namespace, stored_key
from castore._storage.store import Store
from castore._upkeep.import_documents import load_import_file
from castore._upkeep.jsonview import ViewTooLargeError, from_json_view, to_json_view
from castore._upkeep.parts import UpkeepParts
from castore.errors import (
    CastoreError,
    ExportError,
    ImportFormatError,
    IndexFormatError,
    InvalidNameError,
)

EXPORT_MARKER: Final = "$castore_export"
SUFFIXES: Final = (".json", ".yaml", ".yml")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')


@dataclass
class FileImport:
    path: Path
    kind: str
    """``vcr``, ``seeds`` or ``castore-export``."""
    namespace: str
    entries: int = 0
    repeats: int = 0


@dataclass
class ImportReport:
    files: list[FileImport] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return sum(item.entries for item in self.files)


def candidate_files(paths: Iterable[Path]) -> Iterator[tuple[Path, Path, bool]]:
    """(file, the directory namespaces are relative to, named explicitly) for each input."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.suffix in SUFFIXES and found.is_file() and ".castore" not in found.parts:
                    yield found, path, False
        else:
            yield path, path.parent, True


def import_paths(
    store: Store, paths: Iterable[Path], *, prefix: str = "", dry_run: bool = False
) -> ImportReport:
    """Import every recognised file under ``paths`` (directories are searched recursively).

    Files found while walking a directory that are not recordings (a ``package.json``) are
    skipped and listed; a file named explicitly that is not one raises ImportFormatError.
    """
    report = ImportReport()
    writer = UpkeepParts.of(store).writer
    with contextlib.ExitStack() as batch:
        for path, base, explicit in candidate_files(paths):
            try:
                imported, items = _read_file(path, base, prefix)
            except ImportFormatError as error:
                if explicit:
                    raise ImportFormatError(f"{path}: {error}") from None
                report.skipped.append((path, str(error)))
                continue
            if not dry_run and not report.files:  # the first real file creates the store
                batch.enter_context(store.batch())
            for key, entry, packed in items:
                if not dry_run:
                    writer.put_entry(imported.namespace, key, entry, packed)
                imported.entries += 1
            report.files.append(imported)
    return report


Item = tuple[str, Entry, bytes]

#: What turning one malformed item into an entry can raise: broken views, bad fields,
#: values msgpack cannot take, nesting past the stack. All become ImportFormatError.
_ITEM_ERRORS: Final = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    OverflowError,
    RecursionError,
    CastoreError,
)


def _read_file(path: Path, base: Path, prefix: str) -> tuple[FileImport, list[Item]]:
    """Parse and check a whole file before any of it is written: a file with one bad
    item imports nothing, and the error names the file and the item."""
    document = load_import_file(path)
    kind = detect_format(document)
    namespace = prefix + _namespace_for(path, base, kind, document)
    try:
        check_new_namespace(namespace)
    except InvalidNameError as error:
        raise ImportFormatError(f"{error}; pass --prefix or rename the file") from None
    imported = FileImport(path, kind, namespace)
    if kind == "vcr":
        items = _vcr_items(document, path.relative_to(base).as_posix(), imported)
    else:
        items = _fixture_items(document, kind, path)
    return imported, list(items)


def detect_format(document: Any) -> str:
    if isinstance(document, dict) and isinstance(document.get("interactions"), list):
        return "vcr"
    if isinstance(document, dict) and EXPORT_MARKER in document:
        return "castore-export"
    if isinstance(document, dict) and "castore_index" in document:
        raise ImportFormatError("is a castore index already, not something to import")
    if (
        isinstance(document, dict)
        and document
        and all(isinstance(item, dict) and "response" in item for item in document.values())
    ):
        return "seeds"
    raise ImportFormatError(
        "is neither a VCR.py cassette ('interactions' list) nor a recorder fixture file "
        "({key: {'response': ..., 'metadata': {...}}})"
    )


def _namespace_for(path: Path, base: Path, kind: str, document: Any) -> str:
    if kind == "castore-export":
        header = document[EXPORT_MARKER]
        if not isinstance(header, dict) or not isinstance(header.get("namespace"), str):
            raise ImportFormatError(
                f"its {EXPORT_MARKER!r} header must be an object with a 'namespace' string, "
                f"found {header!r:.80}"
            )
        export_format = header.get("format", 1)
        if export_format != 1:
            raise ImportFormatError(
                f"it is export format {export_format!r:.20}; this castore reads format 1. "
                "Upgrade castore"
            )
        namespace: str = header["namespace"]
        return namespace
    relative = path.relative_to(base).with_suffix("") if kind == "vcr" else Path(path.stem)
    segments = [_UNSAFE.sub("_", part).strip(" .") or "_" for part in relative.parts]
    return "/".join(segment.lstrip(".") or "_" for segment in segments)


# --- seeds' files and castore exports ---------------------------------------------------


def _fixture_items(
    document: Mapping[str, Any], kind: str, path: Path
) -> Iterator[tuple[str, Entry, bytes]]:
    exported = kind == "castore-export"
    moment = format_time(now())
    for file_key, item in document.items():
        if file_key == EXPORT_MARKER:
            continue
        try:
            yield _fixture_item(file_key, item, exported, moment, path)
        except _ITEM_ERRORS as error:
            raise ImportFormatError(f"entry {file_key!r:.80}: {_reason(error)}") from None


def _fixture_item(
    file_key: str, item: Mapping[str, Any], exported: bool, moment: str, path: Path
) -> Item:
    """One entry of a seeds' file or an export, checked by the same rules as an index
    entry read from disk, so that nothing is written that could not be read back."""
    if not isinstance(item, dict) or "response" not in item:
        raise ImportFormatError("it must be an object with a 'response'")
    original = item.get("original_key") or file_key
    if not isinstance(original, str):
        raise ImportFormatError(f"'original_key' must be a string, found {original!r:.80}")
    key = stored_key(original)
    value = from_json_view(item["response"]) if exported else item["response"]
    packed = pack_value(value)
    fields: dict[str, Any] = {
        "blob": digest(packed),
        "size": len(packed),
        "recorded_at": moment,
        "metadata": check_metadata(key, item.get("metadata") or {}),
    }
    if exported:
        fields["recorded_at"] = item.get("recorded_at") or moment
        fields.update(
            {name: item[name] for name in ("duration", "schema", "stream") if name in item}
        )
    return key, entry_from_json(fields, path, key), packed


def _reason(error: BaseException) -> str:
    if isinstance(error, IndexFormatError):
        return error.detail
    if isinstance(error, CastoreError):
        return str(error)
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return f"{type(error).__name__}: {error}"[:300]


def export_namespace(store: Store, namespace: str) -> dict[str, Any]:
    """A namespace as plain JSON in the seeds' layout, with typed values (see _jsonview)."""
    document: dict[str, Any] = {
        EXPORT_MARKER: {"format": 1, "namespace": namespace, "exported_at": format_time(now())}
    }
    for key, entry in sorted(store.entries(namespace).items()):
        try:
            response = to_json_view(store.namespace(namespace).read(entry, key), exact=True)
        except ViewTooLargeError as error:
            raise ExportError(namespace, key, str(error)) from None
        item: dict[str, Any] = {
            "response": response,
            "metadata": dict(entry.metadata),
            "recorded_at": format_time(entry.recorded_at),
        }
        for name in ("duration", "schema", "stream"):
            if getattr(entry, name) is not None:
                item[name] = getattr(entry, name)
        document[key] = item
    return document


# --- VCR.py cassettes ----------------------------------------------------------------


def _body_of(request: Mapping[str, Any]) -> Any:
    """The request body as VCR.py stored it, parsed when it is JSON so formatting does not
    change the key."""
    body = request.get("body")
    if isinstance(body, dict) and "string" in body:  # older cassettes: body: {string: ...}
        body = body["string"]
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def vcr_request_key(request: Mapping[str, Any]) -> str:
    """The key of a cassette interaction: ``"POST api.openai.com/v1/chat/completions-<hash>"``,
    a canonical hash of the method, the URI and the (parsed) body."""
    method = str(request.get("method", "GET")).upper()
    uri = str(request.get("uri", ""))
    parts = urlsplit(uri)
    label = f"{method} {parts.netloc}{parts.path}"
    return request_key(label, method=method, uri=uri, body=_body_of(request))


def _vcr_items(
    document: Mapping[str, Any], cassette: str, report: FileImport
) -> Iterator[tuple[str, Entry, bytes]]:
    seen: Counter[str] = Counter()
    moment = now()
    for position, interaction in enumerate(document["interactions"]):
        if not isinstance(interaction, dict) or "response" not in interaction:
            raise ImportFormatError(f"interaction {position} has no response")
        request = interaction.get("request") or {}
        if not isinstance(request, dict):
            raise ImportFormatError(f"interaction {position}: 'request' must be a mapping")
        try:
            key = vcr_request_key(request)
            packed = pack_value(interaction["response"])
        except _ITEM_ERRORS as error:
            raise ImportFormatError(f"interaction {position}: {_reason(error)}") from None
        seen[key] += 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
            report.repeats += 1
        metadata = {
            "cassette": cassette,
            "interaction": position,
            "method": str(request.get("method", "")).upper(),
            "uri": str(request.get("uri", "")),
        }
        yield key, Entry(digest(packed), len(packed), moment, metadata=metadata), packed
