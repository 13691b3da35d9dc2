"""One stored blob as a listing shows it (``Store.blobs()``, verify, gc).

Its own module, imported by the listings: a replay lists nothing, and on Python 3.11 a
dataclass costs every import of castore a millisecond or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from castore._storage.public_names import present_as_public


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One stored blob as a listing shows it."""

    digest: str
    path: Path
    """The file that holds it (for messages and for git): a loose file or a pack."""
    size: int
    """Bytes on disk (compressed)."""
    mtime: float


present_as_public(BlobFile)
