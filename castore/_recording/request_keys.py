"""Keys derived from requests: equal requests, equal keys, whatever the order of their parts.

Where a test has no natural name for a call, ``request_key`` hashes the call's arguments
canonically, leaving out the parts that configure the client rather than the request
(API keys, base URLs, timeouts), so that rotating a key or moving a proxy re-records nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

import blake3

from castore._storage.codec import pack_value

#: Request parts that configure the client rather than the request: left out by default.
DEFAULT_EXCLUDED: Final = (
    "api_key",
    "api_base",
    "base_url",
    "organization",
    "project",
    "timeout",
    "max_retries",
    "http_client",
)


def request_key(
    label: str | None = None, /, *, exclude: Iterable[str] = DEFAULT_EXCLUDED, **parts: Any
) -> str:
    """A stable key for a request, derived by canonically hashing its parts.

    ``request_key(model="gpt-4o", messages=msgs, temperature=0, api_key=KEY)`` gives
    ``"gpt-4o-<32 hex>"``: the same for equal requests whatever the order of dict keys,
    different as soon as a prompt or parameter changes. Parts named in ``exclude`` (api
    keys, base URLs…) never reach the hash; a dotted name such as ``"headers.authorization"``
    leaves out a nested field (matched case-insensitively, as HTTP headers are).
    """
    excluded = [name.lower().split(".") for name in exclude]
    kept = _without(parts, excluded)
    digest = blake3.blake3(pack_value(_canonical(kept))).hexdigest()[:32]
    prefix = label if label is not None else str(parts.get("model") or "request")
    return f"{prefix[:48]}-{digest}"


def _without(mapping: Mapping[str, Any], excluded: list[list[str]]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in mapping.items():
        lowered = str(name).lower()
        if [lowered] in excluded:
            continue
        nested = [path[1:] for path in excluded if len(path) > 1 and path[0] == lowered]
        kept[name] = _without(value, nested) if nested and isinstance(value, Mapping) else value
    return kept


def _canonical(value: Any) -> Any:
    """A form of ``value`` whose packed bytes do not depend on dict or set order."""
    if isinstance(value, Mapping):
        # Dicts pack in insertion order, so inserting in sorted order is canonical.
        ordered = sorted(value.items(), key=lambda item: pack_value(_canonical(item[0])))
        return {_hashable(_canonical(name)): _canonical(item) for name, item in ordered}
    if isinstance(value, list | tuple):  # a request means the same JSON either way
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item) for item in value), key=pack_value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return _canonical(dump(mode="json"))
    return value


def _hashable(value: Any) -> Any:
    """Canonical dict keys become lists when they were tuples; make them keys again."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value
