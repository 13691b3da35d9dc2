"""The remote tiers a store names in castore.json, opened as file backends.

A store with a default remote reads through to it: a pack (or blob) missing from the
checkout is fetched, checked and kept. ``CASTORE_REMOTE`` chooses another remote by name
for one process, or turns reading through off (``CASTORE_REMOTE=none``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from castore._storage.config import StoreConfig
from castore.errors import RemoteConfigError

if TYPE_CHECKING:
    from castore._storage.files.object_store import ObjectStoreFiles

REMOTE_VARIABLE: Final = "CASTORE_REMOTE"
_OFF: Final = frozenset({"none", "off", "false", "0"})


def open_remote(config: StoreConfig, name: str | None = None) -> ObjectStoreFiles:
    """The remote called ``name`` (else the default one) as a file backend; a clear error
    when the store names no such remote."""
    chosen = name or config.default_remote
    if chosen is None or chosen not in config.remotes:
        known = ", ".join(sorted(config.remotes)) or "none"
        wanted = f"remote {chosen!r}" if chosen else "a default remote"
        raise RemoteConfigError(
            f"castore.json names no {wanted} (remotes: {known}); add one with "
            "`castore remote add NAME URL`"
        )
    from castore._storage.files.object_store import ObjectStoreFiles  # noqa: PLC0415 - remotes only

    spec = config.remotes[chosen]
    return ObjectStoreFiles(chosen, spec.url, spec.options)


def reading_remote(config: StoreConfig) -> ObjectStoreFiles | None:
    """The remote a replay reads through to, or None: the default remote, unless
    ``CASTORE_REMOTE`` names another or turns it off."""
    asked = os.environ.get(REMOTE_VARIABLE, "").strip()
    if asked.lower() in _OFF:
        return None
    if not asked and config.default_remote is None:
        return None
    return open_remote(config, asked or None)
