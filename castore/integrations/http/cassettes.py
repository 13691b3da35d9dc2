"""VCR.py cassettes turned into ``castore_http`` recordings: a suite leaves VCR.py behind.

``castore import --vcr-cassettes --as-http`` reads each cassette (VCR.py's YAML or JSON, or
a castore cassette), and records every interaction as ``castore_http`` would have
recorded the same request: the same key (method, ``host/path``, a hash of the query
without secret parameters and of the canonical body; repeats in a cassette numbered in
its order), the same metadata, the same secrets dropped, the body stored decoded. A
server-sent-events body is cut into its events, so a replay hands the client one event
per chunk as a live stream does. Once the test is marked ``castore_http`` (and its ``vcr``
marker removed), its requests replay from the store; the cassette can go.

The namespace is the test module's, where ``castore_http`` looks: pytest-recording keeps a
module's cassettes in ``<module folder>/cassettes/<module name>/``, so the cassette's
grandparent folder and its parent's name give the module.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castore import Store
from castore.errors import ImportFormatError
from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.keys import DEFAULT_DROP_QUERY, MATCH_PARTS, RequestKeys
from castore.integrations.http.recorder import DEFAULT_DROP_HEADERS, TRANSPORT_HEADERS

_EVENT_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class ImportedCassette:
    cassette: Path
    namespace: str
    recordings: int


def module_namespace(cassette: Path, root: Path) -> str:
    """``<root>/tests/cassettes/test_chat/test_hello.yaml`` -> ``tests/test_chat``: the
    namespace of the module whose test used the cassette, as the plugin names it."""
    folder = cassette.resolve().parent
    module = folder.parent.parent / folder.name
    if folder.parent.name != "cassettes":  # not pytest-recording's layout: name it as is
        module = cassette.resolve().with_suffix("")
    try:
        return module.relative_to(root.resolve()).as_posix()
    except ValueError:
        return module.name


def import_cassettes(
    cassettes: Iterable[Path],
    store: Store,
    load: Callable[[Path], tuple[list[Any], list[Any]]],
    *,
    namespace_of: Callable[[Path], str],
) -> list[ImportedCassette]:
    """Record every interaction of ``cassettes`` (read by ``load``: VCR.py's requests and
    response dicts) as ``castore_http`` recordings in ``namespace_of(cassette)``."""
    imported = []
    with store.batch():
        for cassette in cassettes:
            requests, responses = load(cassette)
            namespace = namespace_of(cassette)
            keys = RequestKeys(
                match_on=MATCH_PARTS,
                match_headers=(),
                drop_query=DEFAULT_DROP_QUERY,
                custom=None,
                redact_body=None,
            )
            for request, response in zip(requests, responses, strict=True):
                numbered = keys.numbered(_request(request, cassette))
                store.put(
                    namespace,
                    numbered.key,
                    _answer(response, cassette).to_value(),
                    metadata=numbered.metadata,
                )
            imported.append(ImportedCassette(cassette, namespace, len(requests)))
    return imported


def _request(request: Any, cassette: Path) -> HttpRequest:
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    try:
        return HttpRequest.build(
            request.method,
            request.uri,
            ((name, str(value)) for name, value in (request.headers or {}).items()),
            body,
            client="vcr",
        )
    except (AttributeError, TypeError, ValueError) as error:
        raise ImportFormatError(
            f"{cassette}: an interaction's request cannot be read ({error}); record the "
            "test again with castore_http instead"
        ) from None


def _answer(response: Any, cassette: Path) -> HttpAnswer:
    try:
        status = response["status"]
        headers = [
            (str(name), str(value))
            for name, values in (response.get("headers") or {}).items()
            for value in (values if isinstance(values, list) else [values])
        ]
        body = response.get("body", {}).get("string", b"")
    except (AttributeError, KeyError, TypeError) as error:
        raise ImportFormatError(
            f"{cassette}: an interaction's response cannot be read ({error})"
        ) from None
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    answer = HttpAnswer(
        status=int(status.get("code", 200)),
        reason=str(status.get("message") or ""),
        headers=[
            (name, value)
            for name, value in headers
            if name.lower() not in DEFAULT_DROP_HEADERS and name.lower() not in TRANSPORT_HEADERS
        ],
    )
    decoded = _decoded(raw, _header(headers, "content-encoding"), cassette)
    if decoded:
        streamed = "text/event-stream" in answer.header("content-type")
        answer.chunks = _events(decoded) if streamed else [decoded]
    return answer


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "").strip().lower()


def _decoded(raw: bytes, encoding: str, cassette: Path) -> bytes:
    """The body as the client would read it (castore stores bodies decoded)."""
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
        if encoding == "br":
            import brotli  # noqa: PLC0415 - only for a brotli body, as httpx needs it too

            return bytes(brotli.decompress(raw))
        if encoding == "zstd":
            import zstandard  # noqa: PLC0415

            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(raw))
    except Exception as error:
        raise ImportFormatError(
            f"{cassette}: a {encoding} body does not decode ({error}); was it recorded with "
            "decode_compressed_response?"
        ) from None
    return raw


def _events(body: bytes) -> list[bytes]:
    """A server-sent-events body cut after each blank line: one chunk per event."""
    chunks, start = [], 0
    for end in _EVENT_END.finditer(body):
        chunks.append(body[start : end.end()])
        start = end.end()
    if start < len(body):
        chunks.append(body[start:])
    return chunks
