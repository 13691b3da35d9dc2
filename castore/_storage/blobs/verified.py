"""The one read path of a blob: bytes -> frame check -> digest check -> value.

Every reader goes through :class:`VerifiedBlobs`, whatever backend holds the bytes: replay,
``castore cat``, verify, gc's soundness check before a rewrite, dictionary training. Errors
name the file; the store adds whose entry it was (``BlobError.with_owner``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import blake3

from castore._storage.blobs.loose import digest_named_by
from castore._storage.blobs.packed import pack_problem
from castore._storage.blobs.packfile import parse_index
from castore._storage.blobs.stored import StoredBlobs
from castore._storage.codec import DecodeError, digest, unpack_value
from castore._storage.files.pointers import is_lfs_pointer
from castore._storage.frames import ZSTD_MAGIC, Decompressor, FrameError, FrameTooLargeError
from castore._storage.layout import MAX_FILE_BYTES, FileKind
from castore._storage.safe_files import FileRefused, read_user_file
from castore._storage.value_limit import SETTING
from castore.errors import (
    BlobError,
    CorruptBlobError,
    IndexFormatError,
    LfsPointerError,
    MissingBlobError,
    ValueTooLargeError,
)

_blake3: Final = blake3.blake3


class VerifiedBlobs:
    """A backend's frames, read back as checked values."""

    def __init__(self, blobs: StoredBlobs, decompressor: Decompressor) -> None:
        self.blobs = blobs
        self._read = blobs.read
        self._decompressor = decompressor

    def read_packed(self, blob: str, *, strict: bool = False) -> bytes:
        """A blob's verified msgpack bytes (what the digest is computed over); ``strict``
        also refuses bytes after the zstd frame."""
        frame = self._frame(blob)
        try:
            return self._unframe(frame, blob, blob, strict=strict)
        except BlobError:
            if not self.blobs.drop_cut(blob):
                raise
        # A damaged frame cut from a remote pack was dropped: the pack is read now (which
        # fetches it whole).
        return self._unframe(self._frame(blob), blob, blob, strict=strict)

    def read_value(self, blob: str) -> Any:
        """Decode a blob, checking that its content matches its digest: the replay path.

        The same steps as :meth:`read_packed` and :meth:`unpack`, with the happy path
        inline (a replay is a few microseconds of zstd, blake3 and msgpack, so each call
        around them shows); anything unusual goes back through ``_unframe`` for its error.
        """
        frame = self._read(blob)
        if frame is None:
            raise MissingBlobError(self.blobs.location(blob))
        try:
            packed: bytes | None = self._decompressor.decompress(frame, blob)
        except FrameError:
            packed = None
        if packed is None or _blake3(packed).hexdigest() != blob:
            packed = self.read_packed(blob)  # raises the error that names the file
        try:
            return unpack_value(packed)
        except DecodeError as error:
            raise CorruptBlobError(self._path(blob), str(error)) from None

    def _frame(self, blob: str) -> bytes:
        """A blob's frame as stored; MissingBlobError names where it should be."""
        frame = self._read(blob)
        if frame is None:
            raise MissingBlobError(self.blobs.location(blob))
        return frame

    def read_file(self, path: Path) -> bytes:
        """The bytes of a blob file named by path: through the backend when it is one of
        this store's blobs, else as given (git's textconv hands over a temporary copy)."""
        blob = digest_named_by(path)
        if blob is not None and self.blobs.location(blob).resolve() == path.resolve():
            frame = self._read(blob)
            if frame is not None:
                return frame
        try:
            return read_user_file(path, MAX_FILE_BYTES[FileKind.BLOB])
        except FileNotFoundError:
            raise MissingBlobError(path) from None
        except FileRefused as error:
            raise CorruptBlobError(path, error.reason) from None

    def decode_file(self, frame: bytes, path: Path) -> Any:
        """Decode a blob file's bytes read from anywhere (git's textconv passes a temporary
        copy); the digest is checked when the file name carries one."""
        expected = digest_named_by(path)
        return self.unpack(self._unframe(frame, expected, path), path)

    def is_sound(self, blob: str) -> bool:
        """True if the blob is held and decodes to its digest; a damaged copy gets rewritten."""
        try:
            self.read_packed(blob)
        except BlobError:
            return False
        return True

    def _unframe(
        self, frame: bytes, blob: str | None, where: str | Path, *, strict: bool = False
    ) -> bytes:
        """``where`` is the digest (a backend locates it only for an error) or a path."""
        if not frame.startswith(ZSTD_MAGIC):
            if is_lfs_pointer(frame):
                raise LfsPointerError(self._path(where))
            raise CorruptBlobError(self._path(where), "it is not a zstd frame")
        try:
            packed = self._decompressor.decompress(frame, blob, strict)
        except FrameTooLargeError as error:
            limit = self._decompressor.max_output
            raise ValueTooLargeError(self._path(where), error.size, limit, SETTING) from None
        except FrameError as error:
            raise CorruptBlobError(self._path(where), str(error)) from None
        actual = digest(packed)
        if blob is not None and actual != blob:
            detail = f"its content hashes to {actual[:16]}…, not to its name"
            raise CorruptBlobError(self._path(where), detail)
        return packed

    def unpack(self, packed: bytes, where: str | Path) -> Any:
        """Verified msgpack bytes (from :meth:`read_packed`) as a value; ``where`` is the
        blob's digest or file, for the error."""
        try:
            return unpack_value(packed)
        except DecodeError as error:
            raise CorruptBlobError(self._path(where), str(error)) from None

    def _path(self, where: str | Path) -> Path:
        return where if isinstance(where, Path) else self.blobs.location(where)

    def check_file(self, kind: FileKind, name: str, data: bytes) -> str | None:
        """What is wrong with a file fetched from elsewhere (a remote), or None: a pack must
        hash to its name, a pack index parse for its name, a loose blob decode to its
        digest. The read-through tier keeps only files that pass."""
        where = self.blobs.files.location(kind, name)
        if kind is FileKind.PACK:
            return pack_problem(name, data, where)
        try:
            if kind is FileKind.PACK_INDEX:
                parse_index(data, where)
            else:
                self._unframe(data, name, where)
        except BlobError as error:
            return str(error)
        except IndexFormatError as error:
            return error.detail
        return None
