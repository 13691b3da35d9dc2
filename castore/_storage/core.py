"""The store's machinery, in narrow parts, and how they are put together.

:class:`Store` (``store.py``) is the public face and :class:`Namespace` the recorder's
handle; both are thin layers over a :class:`StoreCore`, which holds no behaviour of its
own: each part does one job, and upkeep (gc, verify, import, dictionary training, git)
is handed the parts it needs, as restic's repository hands out ``BlobLoader`` and
``Lister``:

- ``config``: castore.json as last read (``ConfigFile``);
- ``indexes``: the namespace indexes (``IndexFiles``);
- ``blobs``: packed and loose blobs over the file seam (``StoredBlobs``);
- ``reader``: the one verified read path (``VerifiedBlobs``);
- ``compression``: the compressor for new blobs and the dictionaries (``Compression``);
- ``writer``: the lock, batches, entries (``StoreWriter``);
- ``residency``: which files a selection needs, and the warm-up (``Residency``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from castore._storage.blobs.cut import CutFrames
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.blobs.verified import VerifiedBlobs
from castore._storage.compression import Compression
from castore._storage.config import ConfigFile
from castore._storage.files.folder import FolderFiles
from castore._storage.files.lfs import LfsFiles
from castore._storage.files.seam import Files, find_files
from castore._storage.files.wrappers import ReadThroughFiles
from castore._storage.frames import Decompressor
from castore._storage.index_folder import IndexFiles
from castore._storage.layout import CUT_FRAMES_DIR, PACK_TABLE_NAME, QUARANTINE_DIR, STATE_DIR
from castore._storage.remotes import reading_remote
from castore._storage.residency import Residency
from castore._storage.safe_files import ensure_inside
from castore._storage.value_limit import DEFAULT_MAX_VALUE_BYTES
from castore._storage.writer import StoreWriter
from castore.errors import UnsafePathError


class StoreCore(NamedTuple):
    root: Path
    state_dir: Path
    config: ConfigFile
    indexes: IndexFiles
    blobs: StoredBlobs
    reader: VerifiedBlobs
    compression: Compression
    writer: StoreWriter
    residency: Residency
    max_value_bytes: int
    """Largest value read or recorded (``value_limit.py``)."""

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / QUARANTINE_DIR


def open_core(
    root: Path,
    *,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    files: Files | None = None,
    source: Files | None = None,
    source_label: str = "",
) -> StoreCore:
    """A store's parts over ``files`` (by default the folder at ``root``, whose files may
    still be git-lfs pointers), reading through to ``source`` when one is given: a file
    missing locally is fetched from it, checked, and kept."""
    state_dir = root / STATE_DIR
    config = ConfigFile(root)
    if files is None and source is None:
        source = reading_remote(config.current)
        source_label = f"remote {source.name}" if source is not None else ""
    local = LfsFiles(FolderFiles(root)) if files is None else files
    table_path = state_dir / PACK_TABLE_NAME if find_files(local, FolderFiles) else None
    reader: VerifiedBlobs
    if source is not None:
        local = ReadThroughFiles(
            local,
            source,
            label=source_label or source.describe(),
            check=lambda kind, name, data: reader.check_file(kind, name, data),  # noqa: PLW0108 - reader is made below
        )
    blobs = StoredBlobs(
        local, table_path, _cut_frames(root, state_dir) if source is not None else None
    )
    compression: Compression
    reader = VerifiedBlobs(
        blobs,
        Decompressor(
            max_value_bytes,
            lambda number: compression.load_dictionary(number),  # noqa: PLW0108 - made below
        ),
    )
    compression = Compression(config, reader.read_value)
    indexes = IndexFiles(root)
    writer = StoreWriter(
        state_dir,
        max_value_bytes=max_value_bytes,
        config=config,
        indexes=indexes,
        blobs=blobs,
        reader=reader,
        compression=compression,
    )
    residency = Residency(writer, config, indexes, blobs)
    return StoreCore(
        root=root,
        state_dir=state_dir,
        config=config,
        indexes=indexes,
        blobs=blobs,
        reader=reader,
        compression=compression,
        writer=writer,
        residency=residency,
        max_value_bytes=max_value_bytes,
    )


def _cut_frames(root: Path, state_dir: Path) -> CutFrames | None:
    """Where a remote replay keeps the frames it cuts from packs, if that folder lies
    inside the store (a planted ``.castore`` symlink leaves the store without any)."""
    folder = state_dir / CUT_FRAMES_DIR
    try:
        ensure_inside(root, folder.parent)
    except UnsafePathError:
        return None
    return CutFrames(folder)
