"""git integration: attributes, a textconv diff driver for blobs, a merge driver for indexes.

``castore git setup`` is modelled on ``nbdime config-git --enable``: idempotent, undone by
``--undo``. It writes a marked block to the repository's ``.gitattributes`` (committed, so
everyone gets the attributes) and sets the drivers in ``.git/config`` (per clone, so each
clone runs its own castore):

* blobs: ``filter=lfs`` (unless ``--no-lfs``), binary, and ``diff=castore``, whose textconv
  is ``castore cat``: ``git diff`` and ``git log -p`` show a re-recorded response as JSON;
* indexes: text, LF line ends, and ``merge=castore-index``: ``castore git merge-index``
  merges two branches' keys and reports a true conflict (one key, two different values).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from castore._storage.atomic import write_atomic
from castore._storage.index import Conflict, dump_index, format_time, merge_entries, parse_index
from castore._storage.json_documents import parse_document
from castore._storage.layout import (
    BLOBS_DIR,
    CONFIG_NAME,
    INDEX_DIR,
    MAX_INDEX_BYTES,
    PACK_INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS_DIR,
)
from castore._storage.safe_files import FileRefused, read_user_file
from castore._storage.store import Store
from castore._upkeep.jsonview import to_json_view
from castore._upkeep.parts import UpkeepParts
from castore.errors import CastoreError, GitError, IndexFormatError

BLOCK_BEGIN: Final = (
    "# >>> castore: managed by `castore git setup`; undo with `castore git setup --undo`"
)
BLOCK_END: Final = "# <<< castore"
DIFF_DRIVER: Final = "castore"
#: The diff driver of index files: each entry shown with its value, so that `git diff`
#: of a re-recording shows what the answer now says, not only a changed digest.
INDEX_DIFF_DRIVER: Final = "castore-index"
MERGE_DRIVER: Final = "castore-index"


def git(repo: Path, *args: str) -> str:
    """``git -C repo args…``'s output as text; GitError if git is missing or fails."""
    return git_bytes(repo, *args).decode("utf-8", "surrogateescape")


def git_bytes(repo: Path, *args: str, stdin: str | None = None) -> bytes:
    """As :func:`git`, the output as bytes (file contents, ``-z`` listings); ``stdin`` is
    sent to git's stdin (``cat-file --batch``, ``--pathspec-from-file=-``)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=None if stdin is None else stdin.encode("utf-8", "surrogateescape"),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"`git {' '.join(args)}` failed: {stderr}")
    return result.stdout


def repository_of(path: Path) -> Path:
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    try:
        return Path(git(probe, "rev-parse", "--show-toplevel").strip())
    except GitError:
        raise GitError(f"{path} is not inside a git repository: run `git init` first") from None


def store_location(store_root: Path) -> tuple[Path, str]:
    """(the repository holding the store, the store's path in it, posix)."""
    repo = repository_of(store_root)
    try:
        return repo, store_root.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        raise GitError(f"the store {store_root} is not inside the git repository {repo}") from None


def castore_command() -> str:
    """How git should run castore: this installation's executable, by absolute path."""
    found = shutil.which("castore")
    if found:
        return shlex.quote(str(Path(found).resolve()))
    return f"{shlex.quote(sys.executable)} -m castore"


def _pattern(path: str) -> str:
    # .gitattributes patterns cannot hold spaces; a one-character class matches one.
    return path.replace(" ", "[ ]")


def attribute_lines(store_in_repo: str, *, lfs: bool, remote: bool = False) -> list[str]:
    """The attributes block; with ``remote``, pack data is kept out of git (a remote
    holds it, :data:`IGNORED_WITH_A_REMOTE`), so packs get no attribute."""
    prefix = _pattern(store_in_repo.strip("/")) + "/" if store_in_repo not in ("", ".") else ""
    blobs = (
        f"{prefix}{BLOBS_DIR}/** filter=lfs diff={DIFF_DRIVER} merge=binary -text"
        if lfs
        else f"{prefix}{BLOBS_DIR}/** binary diff={DIFF_DRIVER}"
    )
    # Packs are large and immutable: LFS stores them, and their indexes stay plain text in
    # git, so castore knows which packs a test module needs without downloading any.
    packs = (
        f"{prefix}{PACKS_DIR}/*{PACK_SUFFIX} filter=lfs diff=lfs merge=binary -text"
        if lfs
        else f"{prefix}{PACKS_DIR}/*{PACK_SUFFIX} binary"
    )
    return [
        BLOCK_BEGIN,
        blobs,
        *([] if remote else [packs]),
        f"{prefix}{PACKS_DIR}/*{PACK_INDEX_SUFFIX} text eol=lf merge=binary",
        f"{prefix}{INDEX_DIR}/** text eol=lf merge={MERGE_DRIVER} diff={INDEX_DIFF_DRIVER}",
        f"{prefix}{CONFIG_NAME} text eol=lf",
        BLOCK_END,
    ]


def _without_block(lines: list[str]) -> list[str]:
    kept, inside = [], False
    for line in lines:
        if line == BLOCK_BEGIN:
            inside = True
        elif line == BLOCK_END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


@dataclass
class SetupReport:
    repository: Path
    attributes: Path
    actions: list[str]


#: What ``castore git setup --remote`` keeps out of git: pack data lives on the remote,
#: their ``.idx`` tables stay in git, so a clone knows which packs its tests need.
IGNORED_WITH_A_REMOTE: Final = (f"/{PACKS_DIR}/*{PACK_SUFFIX}",)


def _write_block(path: Path, block: list[str], actions: list[str]) -> None:
    """Put castore's block in ``path`` (replacing an older one), leaving the rest."""
    existing = path.read_text().splitlines() if path.exists() else []
    lines = _without_block(existing)
    while lines and not lines[-1].strip():
        lines.pop()
    if not block:
        if lines != existing:
            if lines:
                write_atomic(path, ("\n".join(lines) + "\n").encode())
            else:
                path.unlink()
            actions.append(f"removed the castore block of {path}")
        return
    text = "\n".join([*lines, "", *block] if lines else block) + "\n"
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text.encode())
        actions.append(f"wrote the castore block of {path}")


def setup(store_root: Path, *, lfs: bool, remote: str | None = None) -> SetupReport:
    """Write the attributes block and configure the drivers; running it again changes
    nothing. With ``remote`` (a remote castore.json names), pack data is kept out of git
    altogether (the store's ``.gitignore``) and that remote becomes the default."""
    repo, relative = store_location(store_root)
    attributes = repo / ".gitattributes"
    actions: list[str] = []
    _write_block(attributes, attribute_lines(relative, lfs=lfs, remote=remote is not None), actions)
    ignored = [BLOCK_BEGIN, *IGNORED_WITH_A_REMOTE, BLOCK_END] if remote else []
    _write_block(store_root / ".gitignore", ignored, actions)
    if remote is not None:
        actions += _make_default_remote(store_root, remote)
        actions += _untrack_packs(repo, relative)
    command = castore_command()
    settings = {
        f"diff.{DIFF_DRIVER}.textconv": f"{command} cat",
        f"diff.{INDEX_DIFF_DRIVER}.textconv": f"{command} --root {shlex.quote(str(store_root))} "
        "git show-index",
        f"merge.{MERGE_DRIVER}.name": "castore index merge (union of both branches' keys)",
        f"merge.{MERGE_DRIVER}.driver": f"{command} git merge-index %O %A %B %P",
    }
    for name, value in settings.items():
        current = _config_get(repo, name)
        if current != value:
            git(repo, "config", "--local", name, value)
            actions.append(f"set {name}")
    if lfs:
        try:
            git(repo, "lfs", "version")
        except GitError:
            raise GitError(
                "git-lfs is not installed: install it (Debian/Ubuntu: `apt-get install git-lfs`, "
                "macOS: `brew install git-lfs`) or run `castore git setup --no-lfs`"
            ) from None
        if _config_get(repo, "filter.lfs.process") is None:
            git(repo, "lfs", "install", "--local")
            actions.append("ran `git lfs install --local`")
    return SetupReport(repo, attributes, actions)


def _untrack_packs(repo: Path, store_in_repo: str) -> list[str]:
    """Packs committed before the store had a remote leave git's index (the files stay):
    their data lives on the remote now. Committing that is the user's step."""
    prefix = f"{store_in_repo}/" if store_in_repo not in ("", ".") else ""
    tracked = git(repo, "ls-files", "-z", "--", f"{prefix}{PACKS_DIR}/*{PACK_SUFFIX}")
    names = [name for name in tracked.split("\0") if name]
    if not names:
        return []
    git(repo, "rm", "-q", "--cached", "--", *names)
    return [f"removed {len(names)} pack(s) from git's index (their data lives on the remote)"]


def _make_default_remote(store_root: Path, remote: str) -> list[str]:
    parts = UpkeepParts.of(Store(store_root))
    with parts.writer.lock():
        config = parts.config.current
        if remote not in config.remotes:
            known = ", ".join(sorted(config.remotes)) or "none yet"
            raise GitError(
                f"castore.json names no remote {remote!r} (remotes: {known}): add it first "
                f"with `castore remote add {remote} URL`"
            )
        if config.default_remote == remote:
            return []
        parts.writer.save_config(dataclasses.replace(config, default_remote=remote))
    return [f"made {remote!r} the default remote in castore.json"]


def undo(store_root: Path) -> SetupReport:
    """Remove the attributes block and the driver configuration (git-lfs stays installed)."""
    repo = repository_of(store_root)
    attributes = repo / ".gitattributes"
    actions: list[str] = []
    _write_block(store_root / ".gitignore", [], actions)
    if attributes.exists():
        existing = attributes.read_text().splitlines()
        kept = _without_block(existing)
        while kept and not kept[-1].strip():
            kept.pop()
        if kept != existing:
            if kept:
                write_atomic(attributes, ("\n".join(kept) + "\n").encode())
            else:
                attributes.unlink()
            actions.append(f"removed the castore block of {attributes}")
    for section in (f"diff.{DIFF_DRIVER}", f"diff.{INDEX_DIFF_DRIVER}", f"merge.{MERGE_DRIVER}"):
        try:
            git(repo, "config", "--local", "--remove-section", section)
            actions.append(f"removed [{section}] from .git/config")
        except GitError:
            pass  # was not set
    return SetupReport(repo, attributes, actions)


def _config_get(repo: Path, name: str) -> str | None:
    try:
        return git(repo, "config", "--local", "--get", name).strip()
    except GitError:
        return None


def merge_index_files(base: Path, ours: Path, theirs: Path, name: str) -> list[Conflict]:
    """The merge driver: merge ``theirs`` into ``ours`` (written in place) over ``base``."""
    documents = {}
    for side, path in (("base", base), ("ours", ours), ("theirs", theirs)):
        raw = _read_side(path)
        documents[side] = parse_index(raw, Path(name)) if raw.strip() else {}
    merged, conflicts = merge_entries(documents["base"], documents["ours"], documents["theirs"])
    namespace = _namespace_of(ours) or _namespace_of(theirs) or Path(name).stem
    write_atomic(ours, dump_index(namespace, merged))
    return conflicts


def _read_side(path: Path) -> bytes:
    """One side of a merge, as git hands it over (a temporary file; absent when the
    index is new on that side), read with the same caps as an index in the store."""
    try:
        return read_user_file(path, MAX_INDEX_BYTES)
    except FileNotFoundError:
        return b""
    except FileRefused as error:
        raise IndexFormatError(path, error.reason) from None


def _namespace_of(path: Path) -> str | None:
    try:
        document = parse_document(_read_side(path), path)
    except IndexFormatError:
        return None
    value = document.get("namespace") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def index_with_values(raw: bytes, path: Path, read_value: Callable[[str], Any]) -> str:
    """An index file as text for ``git diff``: one block per key, its entry line, then
    its value as indented JSON. A value whose blob this checkout lacks (collected by gc,
    or not pulled from LFS) says so instead."""
    entries = parse_index(raw, path) if raw.strip() else {}
    blocks = []
    for key, entry in sorted(entries.items()):
        try:
            view = to_json_view(read_value(entry.blob))
            value = json.dumps(view, indent=2, ensure_ascii=False)
        except CastoreError as error:
            value = f"(value not available here: {type(error).__name__})"
        indented = "\n".join(f"    {line}" for line in value.splitlines())
        stamp = f"[blob {entry.blob[:12]}, recorded {format_time(entry.recorded_at)}]"
        blocks.append(f"{key}  {stamp}\n{indented}")
    return "\n".join(blocks) + ("\n" if blocks else "")


def describe_conflict(conflict: Conflict, name: str) -> str:
    ours, theirs = conflict.ours, conflict.theirs
    return (
        f"castore: conflict in {name}: key {conflict.key!r} was recorded differently on "
        f"both branches (ours: blob {ours.blob[:12]}… recorded {format_time(ours.recorded_at)}; "
        f"theirs: blob {theirs.blob[:12]}… recorded {format_time(theirs.recorded_at)}). "
        f"Kept ours. To keep theirs, replace that line of {name} with theirs "
        f"(`git show :3:{name}`), or re-record the key; then `git add {name}`"
    )
