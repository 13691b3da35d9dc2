"""Training a zstd dictionary on a store's own values, and recompressing its blobs with it.

LLM responses are small and alike (the same JSON keys, system prompts, boilerplate), so a
dictionary trained on them compresses each blob far better than zstd alone
(docs/benchmarks.md has the figures). Training is explicit, ``castore train-dictionary``,
never automatic: it rewrites every blob file, which git and git-lfs see as changes.

The dictionary is itself a content-addressed blob (its value is the dictionary's bytes)
and ``castore.json`` maps its explicit dictionary id to that blob. Each zstd frame carries
the id of the dictionary it was compressed with, and older dictionaries stay listed, so
every blob ever written stays readable. Blob names do not change: they are digests of the
uncompressed values.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from castore._storage.config import MAX_LEVEL, MIN_LEVEL
from castore._storage.frames import Compressor
from castore._storage.store import Store
from castore._upkeep.dictionary_training import (
    FIRST_USER_ID,
    LAST_ID,
    install_dictionary,
)
from castore._upkeep.packing import pack_store
from castore._upkeep.parts import UpkeepParts
from castore._upkeep.progress import Progress, no_progress
from castore.errors import TrainingError

DEFAULT_DICTIONARY_SIZE: Final = 110 * 1024
MIN_SAMPLES: Final = 16


@dataclass
class Training:
    dictionary_id: int
    dictionary_blob: str
    dictionary_bytes: int
    samples: int
    rewritten: int
    bytes_before: int
    bytes_after: int


def train_dictionary(
    store: Store,
    *,
    size: int = DEFAULT_DICTIONARY_SIZE,
    level: int | None = None,
    progress: Progress = no_progress,
) -> Training:
    """Train a dictionary on every value in the store, make it the active one, and
    recompress every blob with it. Safe to interrupt: the new dictionary is recorded in
    ``castore.json`` before any blob uses it, and old dictionaries stay listed."""
    parts = UpkeepParts.of(store)
    with parts.writer.lock():
        store.refresh()
        config = parts.config.current
        level = config.level if level is None else level
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise TrainingError(f"zstd level {level} is outside {MIN_LEVEL}..{MAX_LEVEL}")
        dictionaries = set(config.dictionaries.values())
        values = [blob for blob in parts.blobs.walk() if blob.digest not in dictionaries]
        if len(values) < MIN_SAMPLES:
            raise TrainingError(
                f"the store holds {len(values)} values; a dictionary needs at least "
                f"{MIN_SAMPLES} (record more first)"
            )
        bytes_before = sum(blob.size for blob in values)
        samples = [
            parts.reader.read_packed(blob.digest)
            for blob in progress(values, len(values), "reading values")
        ]
        dictionary_id = _new_id(set(config.dictionaries))
        dictionary_blob, dictionary = install_dictionary(
            parts.writer, config, samples, size=size, dictionary_id=dictionary_id, level=level
        )
        parts.writer.rewrite_blobs(samples, Compressor(level, dictionary))
        if parts.blobs.packs.names():
            # The values were rewritten loose; packs are immutable, so rewrite them all.
            pack_store(store, repack=True, progress=progress)
        rewritten = {blob.digest for blob in values}
        bytes_after = sum(blob.size for blob in parts.blobs.walk() if blob.digest in rewritten)
    return Training(
        dictionary_id=dictionary_id,
        dictionary_blob=dictionary_blob,
        dictionary_bytes=len(dictionary),
        samples=len(samples),
        rewritten=len(values),
        bytes_before=bytes_before,
        bytes_after=bytes_after,
    )


def _new_id(taken: set[int]) -> int:
    """An id drawn at random: two branches that each train a dictionary do not collide."""
    while True:
        candidate = FIRST_USER_ID + secrets.randbelow(LAST_ID - FIRST_USER_ID)
        if candidate not in taken:
            return candidate
