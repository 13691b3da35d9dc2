"""Moving a store's committed blobs and packs into git-lfs, or back out of it, when
``castore git setup`` changes their attributes.

git runs a file through its filter when the file is added, so blobs committed before
``filter=lfs`` was set stay plain git objects (``git lfs ls-files`` does not list them),
and blobs committed under LFS stay pointers after the attribute is gone, until they are
added again: ``git add --renormalize``. This module finds the staged files whose form
(pointer or content) disagrees with what their attributes now ask, and re-adds only
those. It stages; committing stays the user's step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from castore._storage.files.pointers import MAX_POINTER_BYTES, is_lfs_pointer, is_pointer_file
from castore._storage.layout import BLOBS_DIR, PACK_SUFFIX, PACKS_DIR
from castore._upkeep.git import git_bytes


@dataclass
class Renormalization:
    into_lfs: list[str] = field(default_factory=list)
    """Repository paths re-added as git-lfs pointers (now staged)."""
    out_of_lfs: list[str] = field(default_factory=list)
    """Repository paths re-added as plain git content (now staged)."""
    pointers: list[str] = field(default_factory=list)
    """Files that should leave git-lfs but that this clone holds only as pointers. Then
    nothing is moved (git would store the pointer text as their content) and the index
    is left as it was."""

    @property
    def moved(self) -> list[str]:
        return sorted(self.into_lfs + self.out_of_lfs)


def store_files(repo: Path, store_path: str) -> dict[str, str]:
    """The store's blob and pack files in git's index: repository path -> object id."""
    prefix = f"{store_path}/" if store_path not in ("", ".") else ""
    listing = git_bytes(
        repo,
        "--literal-pathspecs",
        "ls-files",
        "--stage",
        "-z",
        "--",
        f"{prefix}{BLOBS_DIR}",
        f"{prefix}{PACKS_DIR}",
    )
    files = {}
    for record in listing.split(b"\0"):
        if not record:
            continue
        info, _, name = record.partition(b"\t")
        path = name.decode("utf-8", "surrogateescape")
        if path.startswith(f"{prefix}{PACKS_DIR}/") and not path.endswith(PACK_SUFFIX):
            continue  # pack indexes stay text in git
        files[path] = info.split()[1].decode()
    return files


def pointer_objects(repo: Path, object_ids: set[str]) -> set[str]:
    """Which of these git objects are git-lfs pointers (reads only the small ones)."""
    if not object_ids:
        return set()
    sizes = git_bytes(
        repo,
        "cat-file",
        "--batch-check=%(objectname) %(objectsize)",
        stdin="\n".join(sorted(object_ids)),
    )
    small = [
        name
        for name, size in (line.split() for line in sizes.decode().splitlines())
        if int(size) < MAX_POINTER_BYTES
    ]
    if not small:
        return set()
    contents = git_bytes(repo, "cat-file", "--batch", stdin="\n".join(small))
    found = set()
    position = 0
    for _ in small:
        header_end = contents.index(b"\n", position)
        name, _kind, size = contents[position:header_end].split()
        body = contents[header_end + 1 : header_end + 1 + int(size)]
        if is_lfs_pointer(body):
            found.add(name.decode())
        position = header_end + 1 + int(size) + 1  # the content, then a newline
    return found


def lfs_filtered(repo: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` the attributes send through git-lfs (``filter=lfs``)."""
    output = git_bytes(repo, "check-attr", "-z", "--stdin", "filter", stdin="\0".join(paths))
    fields = output.split(b"\0")
    return {
        fields[n].decode("utf-8", "surrogateescape")
        for n in range(0, len(fields) - 2, 3)
        if fields[n + 2] == b"lfs"
    }


def renormalize_store(repo: Path, store_path: str) -> Renormalization:
    """Re-add the store's committed blobs and packs whose form disagrees with their
    attributes: content where ``filter=lfs`` asks for a pointer, or the other way."""
    report = Renormalization()
    staged = store_files(repo, store_path)
    if not staged:
        return report
    # git reads attributes from the index where the file is gone from the work tree:
    # stage its removal (`castore git setup --undo` deleted it) so that its filter goes.
    staged_attributes = b""
    if not (repo / ".gitattributes").exists():
        staged_attributes = git_bytes(repo, "ls-files", "--stage", "--", ".gitattributes")
        if staged_attributes:
            git_bytes(repo, "rm", "--cached", "-q", "--", ".gitattributes")
    pointers = pointer_objects(repo, set(staged.values()))
    wants_lfs = lfs_filtered(repo, sorted(staged))
    for path, object_id in sorted(staged.items()):
        if not (repo / path).is_file():
            continue  # deleted in the work tree (gc): `git add` records that
        if path in wants_lfs and object_id not in pointers:
            report.into_lfs.append(path)
        elif path not in wants_lfs and object_id in pointers:
            if is_pointer_file(repo / path):
                report.pointers.append(path)
            else:
                report.out_of_lfs.append(path)
    if report.pointers and staged_attributes:  # nothing moves: the index stays as it was
        mode, blob = staged_attributes.decode().split()[:2]
        cacheinfo = f"{mode},{blob},.gitattributes"
        git_bytes(repo, "update-index", "--add", "--cacheinfo", cacheinfo)
        return report
    if report.moved:
        git_bytes(
            repo,
            "--literal-pathspecs",
            "add",
            "--renormalize",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            stdin="\0".join(report.moved),
        )
    return report
