"""Training a zstd dictionary on a store's values and making it the store's active one.

Shared by ``castore train-dictionary`` (an explicit retraining, id drawn at random) and
the first ``castore pack`` (id derived from the sample, so packing is deterministic): both
train with the same fixed COVER parameters, store the dictionary as a content-addressed
blob, and list it in castore.json before any blob uses it.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import zstandard

from castore._storage.codec import pack_value
from castore._storage.config import StoreConfig
from castore._storage.frames import Compressor
from castore._storage.writer import StoreWriter

# zstd reserves dictionary ids below 32768.
FIRST_USER_ID: Final = 32768
LAST_ID: Final = 2**31 - 1
# Fixed COVER parameters: as good as zstd's parameter search on LLM traffic, 5x faster.
COVER_K: Final = 2048
COVER_D: Final = 8


def install_dictionary(
    writer: StoreWriter,
    config: StoreConfig,
    samples: list[bytes],
    *,
    size: int,
    dictionary_id: int,
    level: int,
) -> tuple[str, bytes]:
    """Train a dictionary of ``size`` bytes on ``samples``, store it, make it active in
    castore.json (older dictionaries stay listed); returns its blob digest and bytes."""
    training_set: list[bytes | bytearray | memoryview] = list(samples)
    trained = zstandard.train_dictionary(
        size, training_set, k=COVER_K, d=COVER_D, dict_id=dictionary_id, level=level, threads=0
    )
    dictionary = trained.as_bytes()
    blob = writer.write_blob(pack_value(dictionary), compressor=Compressor(level))
    writer.save_config(
        dataclasses.replace(
            config,
            level=level,
            dictionary=dictionary_id,
            dictionaries={**config.dictionaries, dictionary_id: blob},
        )
    )
    return blob, dictionary
