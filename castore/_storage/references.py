"""Which blobs a store still uses: the question gc, verify, stats and the session report
all start from. Reading every index is the price; callers that can avoid asking do."""

from __future__ import annotations

from castore._storage.blobs.stored import StoredBlobs
from castore._storage.config import StoreConfig
from castore._storage.index_folder import IndexFiles
from castore._storage.layout import CONFIG_NAME

#: blob digest -> every (namespace, key) that uses it; castore.json's dictionaries too.
References = dict[str, list[tuple[str, str]]]


def references(indexes: IndexFiles, config: StoreConfig) -> References:
    """Who uses each blob. Raises IndexFormatError on a malformed index: nobody may delete
    blobs on the word of an index that cannot be read."""
    found: References = {}
    for namespace in indexes.namespaces():
        for key, entry in indexes.cached(namespace).items():
            found.setdefault(entry.blob, []).append((namespace, key))
    for dictionary_id, blob in config.dictionaries.items():
        found.setdefault(blob, []).append((CONFIG_NAME, f"dictionary {dictionary_id}"))
    return found


def unreferenced_loose_blobs(
    indexes: IndexFiles, config: StoreConfig, blobs: StoredBlobs
) -> tuple[int, int]:
    """(count, bytes) of loose blobs no index or castore.json refers to: what the next
    ``castore gc`` would delete. Raises a castore error if an index cannot be read."""
    loose = list(blobs.walk_loose())
    if not loose:
        return 0, 0
    live = references(indexes, config)
    dead = [blob for blob in loose if blob.digest not in live]
    return len(dead), sum(blob.size for blob in dead)
