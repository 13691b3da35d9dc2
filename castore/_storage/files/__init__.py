"""The file seam: where the files that hold a store's values live, by kind and name.

As restic's ``internal/backend``: a small interface (:class:`~.seam.Files`) with one
class per place (a local folder, the objects of a git revision, object storage, memory)
and small wrappers that compose around any of them (read-only, read-through with a
local cache, git-lfs warm-up). Loose blobs, packs and their indexes are layout logic one
level up, in ``blobs/``; nothing here decodes a frame or knows a digest's meaning.
"""
