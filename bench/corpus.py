"""The benchmark's input: the shared corpus of VCR.py cassettes, scaled up realistically.

The corpus is read from ``../shared/corpus`` (or ``$CASTORE_CORPUS``), never copied into
the repository. Scaling by N adds N-1 copies of every cassette as new "test files". A copy
keeps each response byte for byte with probability ``duplicates`` (the same recording
copied between test files) and otherwise holds what a re-recording of the same request
would return: the same content with a new date, request id and completion id.

One data fix applies to all approaches alike: 17 responses in the crewAI cassettes keep a
``Content-Encoding: gzip`` header although their body was stored decoded, which makes
httpx fail to replay them under vcrpy; the header is dropped from those responses.
"""

from __future__ import annotations

import copy
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from castore._upkeep.importers import vcr_request_key

REPO = Path(__file__).resolve().parent.parent


def corpus_root() -> Path:
    return Path(os.environ.get("CASTORE_CORPUS") or REPO.parent / "shared" / "corpus")


@dataclass
class Interaction:
    request: dict[str, Any]
    response: dict[str, Any]
    key: str
    """castore's key for it: vcr_request_key, with #2, #3… for repeats, as the importer."""


@dataclass
class Cassette:
    name: str
    """Path of the original cassette relative to the corpus, plus a copy suffix."""
    interactions: list[Interaction]


def _headers(response: dict[str, Any]) -> dict[str, Any]:
    headers: dict[str, Any] = response.setdefault("headers", {})
    return headers


def _drop_stale_encoding(response: dict[str, Any]) -> None:
    headers = _headers(response)
    for name in list(headers):
        if name.lower() == "content-encoding":
            body = response.get("body", {}).get("string", b"")
            raw = body if isinstance(body, bytes) else body.encode()
            if not raw.startswith(b"\x1f\x8b"):  # not actually gzip
                del headers[name]


def load(
    root: Path | None = None, subset: str = "crewai", *, limit: int | None = None
) -> list[Cassette]:
    """The subset's cassettes in path order; the first ``limit`` only, if given (each is
    parsed, so a test that needs a few does not pay for all 597)."""
    folder = (root or corpus_root()) / subset
    if not folder.is_dir():
        raise SystemExit(
            f"corpus not found at {folder}: set CASTORE_CORPUS to the corpus directory"
        )
    cassettes = []
    for path in sorted(folder.rglob("*.yaml"))[:limit]:
        document = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        seen: dict[str, int] = {}
        interactions = []
        for item in document["interactions"]:
            _drop_stale_encoding(item["response"])
            key = vcr_request_key(item["request"])
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                key = f"{key}#{seen[key]}"
            interactions.append(Interaction(item["request"], item["response"], key))
        cassettes.append(
            Cassette(path.relative_to(folder).with_suffix("").as_posix(), interactions)
        )
    return cassettes


def rerecorded(response: dict[str, Any], salt: str) -> dict[str, Any]:
    """What recording the same request again returns: same content, new date and ids."""
    fresh = copy.deepcopy(response)
    rng = random.Random(salt)
    headers = _headers(fresh)
    for name in list(headers):
        lowered = name.lower()
        if lowered == "date":
            day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
            headers[name] = [f"Mon, {day:02d} Jun 2026 {hour:02d}:{minute:02d}:00 GMT"]
        elif "request-id" in lowered or lowered in {"cf-ray", "x-amzn-requestid"}:
            headers[name] = [f"req_{rng.getrandbits(64):016x}"]
    body = fresh.get("body", {})
    text = body.get("string")
    if isinstance(text, str):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            if isinstance(document.get("id"), str):
                document["id"] = document["id"][:-8] + f"{rng.getrandbits(32):08x}"
            if isinstance(document.get("created"), int):
                document["created"] += rng.randint(1, 10**6)
            body["string"] = json.dumps(document, separators=(",", ":"))
    if not headers:
        headers["date"] = [f"Mon, 01 Jun 2026 00:00:{rng.randint(0, 59):02d} GMT"]
    return fresh


def scale(
    cassettes: list[Cassette], factor: int, duplicates: float, seed: int = 7
) -> list[Cassette]:
    """The corpus times ``factor``: copies are new test files with re-recorded responses,
    a ``duplicates`` share of them byte-identical to the original."""
    rng = random.Random(seed)
    scaled = list(cassettes)
    for number in range(1, factor):
        for cassette in cassettes:
            interactions = [
                Interaction(
                    item.request,
                    item.response
                    if rng.random() < duplicates
                    else rerecorded(item.response, f"{cassette.name}/{number}/{position}"),
                    item.key,
                )
                for position, item in enumerate(cassette.interactions)
            ]
            scaled.append(Cassette(f"{cassette.name}__copy{number}", interactions))
    return scaled
