"""A recorded HTTP (or gRPC) answer as a person reads it, and as comparisons see it.

``castore_http`` stores an answer as the client received it: a list of header pairs and
the body's chunks as bytes (``integrations/http/exchange.py`` writes that form). Read that
way, ``--ignore '$..date'`` finds no ``date`` and a changed word hides in a chunk of
bytes. The view built here is what ``castore diff`` shows, what its ignore patterns and
the volatile parts (``volatile``) name, and what "the same answer" means:

* ``status``, ``reason``, ``http_version``;
* ``headers``: a member per header, named in lower case (a repeated header: a list);
* ``body``: JSON parsed; server-sent events as a list of ``{"event", "data", "id"}`` (each
  ``data`` parsed when it is JSON); an AWS event stream as its decoded events;
  newline-delimited JSON as a list; other text as a string; anything else as bytes;
* ``times``: the chunks' times.

A gRPC answer reads as ``grpc_code``, ``details``, its metadata as members, and its
messages. Any other value is its own view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

#: The members that make a stored value an HTTP answer (``HttpAnswer.to_value``).
_HTTP_MEMBERS: Final = frozenset({"status", "headers", "chunks"})
_GRPC_MEMBERS: Final = frozenset({"grpc_code", "messages"})
_EVENT_STREAM: Final = "aws-eventstream"


def is_http_answer(value: Any) -> bool:
    return isinstance(value, Mapping) and value.keys() >= _HTTP_MEMBERS


def readable(value: Any) -> Any:
    """The readable view of an HTTP or gRPC answer; any other value as it is."""
    if is_http_answer(value):
        return _http_view(value)
    if isinstance(value, Mapping) and value.keys() >= _GRPC_MEMBERS:
        return {
            **{name: part for name, part in value.items() if not name.endswith("metadata")},
            "initial_metadata": header_members(value.get("initial_metadata") or []),
            "trailing_metadata": header_members(value.get("trailing_metadata") or []),
        }
    return value


def header_members(pairs: Iterable[Any]) -> dict[str, Any]:
    """Header pairs as members named in lower case; a repeated name holds a list."""
    members: dict[str, Any] = {}
    for pair in pairs:
        name, content = str(pair[0]).lower(), pair[1]
        if name not in members:
            members[name] = content
        elif isinstance(members[name], list):
            members[name].append(content)
        else:
            members[name] = [members[name], content]
    return members


def _http_view(value: Mapping[str, Any]) -> dict[str, Any]:
    headers = header_members(value.get("headers") or [])
    content_type = str(headers.get("content-type", "")).lower()
    chunks = list(value.get("chunks") or [])
    if value.get("framing") == _EVENT_STREAM:
        body: Any = [
            {"headers": _event_headers(event), "payload": event.get("payload")}
            if isinstance(event, Mapping)
            else event
            for event in chunks
        ]
    else:
        body = body_view(
            b"".join(bytes(chunk) for chunk in chunks if isinstance(chunk, bytes | bytearray)),
            content_type,
        )
    view: dict[str, Any] = {
        "status": value.get("status"),
        "reason": value.get("reason", ""),
        "http_version": value.get("http_version", ""),
        "headers": headers,
        "body": body,
    }
    if "times" in value:
        view["times"] = list(value.get("times") or [])
    return view


def _event_headers(event: Mapping[str, Any]) -> dict[str, Any]:
    return {str(header[0]): header[1] for header in event.get("headers") or []}


def body_view(raw: bytes, content_type: str) -> Any:
    """A body as it reads: see the module's docstring."""
    if not raw:
        return ""
    if "event-stream" in content_type:
        return server_sent_events(raw)
    if "ndjson" in content_type or "jsonl" in content_type:
        return [_json_or_text(line) for line in raw.splitlines() if line.strip()]
    if "json" in content_type or raw[:1] in (b"{", b"["):
        parsed = _json(raw)
        if parsed is not _NOT_JSON:
            return parsed
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def server_sent_events(raw: bytes) -> list[dict[str, Any]]:
    """The events of a ``text/event-stream`` body, each ``data`` parsed when it is JSON."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        event: dict[str, Any] = {}
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, content = line.partition(":")
            content = content.removeprefix(" ")
            if field == "data":
                data.append(content)
            elif field in ("event", "id", "retry"):
                event[field] = content
        if data:
            event["data"] = _json_or_text("\n".join(data).encode())
        if event:
            events.append(event)
    return events


_NOT_JSON: Final = object()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _json_or_text(raw: bytes) -> Any:
    parsed = _json(raw)
    return raw.decode("utf-8", "replace") if parsed is _NOT_JSON else parsed
