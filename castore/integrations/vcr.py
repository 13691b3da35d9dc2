"""castore under VCR.py: cassettes whose response bodies live in a castore store.

VCR.py keeps matching, filters, ``before_record_*`` hooks and record modes; this persister
only changes where a cassette's data goes. Each response body becomes a castore value in
the namespace ``vcr/<cassette path>``, so identical bodies are stored once across all
cassettes (zstd-compressed, git-lfs friendly), and ``castore gc``, ``prune``, ``verify``
and ``diff`` see them. The cassette file itself shrinks to a small, sorted JSON document
(valid YAML too) holding the requests, each response's status and headers, and the key
of its body::

    {"castore_cassette": 1, "namespace": "vcr/tests/cassettes/test_chat/test_hello",
     "interactions": [{"request": {...}, "response": {"status": ..., "headers": ...},
                       "request_body": "0001 request body",
                       "body": "0001 POST api.openai.com/v1/chat/completions"}]}

Request bodies (prompts, images) are values in the store as well, so the index stays
small text.

A cassette that is still VCR.py's own YAML (or JSON) is read by VCR.py's own loader, so
both kinds replay side by side during a migration, and ``castore import`` converts
the old ones. Turn it on for pytest-recording with ``castore_vcr = true`` in the pytest
configuration; plain VCR.py users call :func:`use_castore`.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Final

from castore import Store
from castore.errors import CastoreError
from castore.integrations.http import DEFAULT_DROP_HEADERS, DEFAULT_DROP_QUERY

CASSETTE_FORMAT: Final = 1
_TAG: Final = "castore_cassette"


class CastorePersister:
    """A VCR.py persister (``VCR.register_persister``) backed by ``store``."""

    def __init__(self, store: Store, root: Path | None = None) -> None:
        self.store = store
        #: Cassette paths are named relative to this folder in namespaces (the rootdir).
        self.root = (root or Path.cwd()).resolve()

    def namespace_for(self, cassette_path: Path) -> str:
        path = cassette_path.resolve()
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            relative = Path(path.name)
        return "vcr/" + relative.with_suffix("").as_posix()

    def load_cassette(self, cassette_path: Any, serializer: Any) -> tuple[list[Any], list[Any]]:
        from vcr.persisters.filesystem import (  # noqa: PLC0415 - VCR.py is optional
            CassetteNotFoundError,
            FilesystemPersister,
        )
        from vcr.request import Request  # noqa: PLC0415

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        text = path.read_text(encoding="utf-8")
        document = _castore_document(text)
        if document is None:  # VCR.py's own cassette: read as VCR.py reads it
            return FilesystemPersister.load_cassette(path, serializer)  # type: ignore[no-any-return]
        namespace = document["namespace"]
        requests, responses = [], []
        for interaction in document["interactions"]:
            request = dict(interaction["request"])
            response = dict(interaction["response"])
            try:
                if "request_body" in interaction:
                    request["body"] = self.store.get(namespace, interaction["request_body"])
                body = self.store.get(namespace, interaction["body"])
            except CastoreError as error:
                raise CastoreError(
                    f"cassette {path}: {error}; re-record it (--record-mode=rewrite)"
                ) from None
            requests.append(Request._from_dict(request))
            response["body"] = {"string": body}
            responses.append(response)
        return requests, responses

    def save_cassette(
        self, cassette_path: Any, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        path = Path(cassette_path)
        namespace = self.namespace_for(path)
        interactions = []
        keys = []
        with self.store.batch():
            for number, (request, response) in enumerate(
                zip(cassette_dict["requests"], cassette_dict["responses"], strict=True), start=1
            ):
                key = f"{number:04d} {request.method} {request.host}{request.path}"[:100]
                body = response.get("body", {}).get("string", b"")
                self.store.put(namespace, key, body, metadata={"uri": request.uri[:300]})
                keys.append(key)
                kept = {name: value for name, value in response.items() if name != "body"}
                entry: dict[str, Any] = {"response": kept, "body": key}
                described = request._to_dict()
                if described.get("body"):  # prompts, images: a blob too, not index text
                    body_key = f"{number:04d} request body"
                    self.store.put(namespace, body_key, described.pop("body"))
                    keys.append(body_key)
                    entry["request_body"] = body_key
                entry["request"] = described
                interactions.append(entry)
            for stale in set(self.store.entries(namespace)) - set(keys):
                self.store.delete(namespace, stale)
        document = {_TAG: CASSETTE_FORMAT, "namespace": namespace, "interactions": interactions}
        _write_atomically(
            path, json.dumps(document, indent=1, sort_keys=True, default=_text) + "\n"
        )


#: castore's modes as VCR.py's record modes. ``off`` (call through, store nothing) has no
#: VCR.py twin: pytest-recording's ``--disable-recording`` is its way.
RECORD_MODES: Final = {"none": "none", "new_episodes": "new_episodes", "all": "all"}


def apply_castore_rules(vcr: Any, mode: str | None) -> None:
    """The rules of ``castore_http`` for a VCR.py instance whose own configuration does
    not say otherwise: castore's mode (``RECORD_FIXTURES``, ``--castore-mode``) as its
    record mode, and the same secrets kept out of cassettes: request headers that carry
    credentials (``filter_headers``), the same response headers (cookies, org ids) and
    the same query parameters (``?key=``). A ``vcr_config`` or marker that sets one of
    these still wins, as it does in VCR.py."""
    if mode in RECORD_MODES:
        vcr.record_mode = RECORD_MODES[mode]
    if not vcr.filter_headers:
        vcr.filter_headers = sorted(DEFAULT_DROP_HEADERS)
    if not vcr.filter_query_parameters:
        vcr.filter_query_parameters = sorted(DEFAULT_DROP_QUERY)
    if vcr.before_record_response is None:
        vcr.before_record_response = drop_secret_response_headers


def drop_secret_response_headers(response: dict[str, Any]) -> dict[str, Any]:
    """A ``before_record_response`` hook: the response headers ``castore_http`` drops."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in DEFAULT_DROP_HEADERS:
            del headers[name]
    return response


def use_castore(vcr: Any, store: Store | str | os.PathLike[str], root: Path | None = None) -> None:
    """Make ``vcr`` (a ``vcr.VCR``) keep its cassettes' bodies in ``store``::

    my_vcr = vcr.VCR()
    use_castore(my_vcr, "tests/fixtures/castore")
    """
    vcr.register_persister(
        CastorePersister(store if isinstance(store, Store) else Store(store), root)
    )


def _castore_document(text: str) -> dict[str, Any] | None:
    if _TAG not in text[:200]:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get(_TAG) != CASSETTE_FORMAT:
        return None
    return document


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(value).__name__} in a cassette index")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # 0o666 filtered by the umask, as VCR.py's own persister creates a cassette (mkstemp
    # would leave every cassette readable by its owner only).
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def migrate_cassettes(
    paths: list[Path], store: Store, root: Path | None = None
) -> list[tuple[Path, int]]:
    """Rewrite VCR.py YAML cassettes as castore cassettes (bodies into ``store``), in
    place: ``castore import --vcr-cassettes``. Cassettes already migrated are left
    alone; each file is replaced atomically. Returns (cassette, interactions) pairs."""
    from vcr.serializers import yamlserializer  # noqa: PLC0415 - VCR.py is optional

    persister = CastorePersister(store, root)
    migrated = []
    for path in paths:
        if _castore_document(path.read_text(encoding="utf-8")) is not None:
            continue
        requests, responses = persister.load_cassette(path, yamlserializer)[:2]
        persister.save_cassette(path, {"requests": requests, "responses": responses}, None)
        migrated.append((path, len(requests)))
    return migrated
