"""Which namespaces a run may speak for, and their entries no test asked for.

Pure functions over plain data (node ids, paths, sets of keys), as syrupy's ``report.py``
judges snapshots: the session gathers the facts, these decide. Judging is selection-aware:
a namespace is judged only when this run used it and every test that could use it ran
and passed. For a module's own namespace that means the whole module ran (no
``-k``/``-m``/``::`` narrowing in it, no failure or skip); for any other namespace it means
the whole suite ran clean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from castore._pytest.settings import module_namespace
from castore._storage.last_run import Judgement


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def narrowed_modules(args: Iterable[str], invocation_dir: Path, rootpath: Path) -> set[str]:
    """Modules only part of which was selected on the command line (``file::test``)."""
    narrowed = set()
    for arg in args:
        if "::" in arg:
            path = (invocation_dir / arg.split("::", 1)[0]).resolve()
            narrowed.add(module_namespace(path, rootpath) + path.suffix)
    return narrowed


def complete_modules(
    collected: Iterable[str], clean: Mapping[str, bool], spoiled: set[str]
) -> set[str]:
    """Modules all of whose collected tests ran and passed, and none of which was narrowed
    or deselected (``spoiled``)."""
    by_module: dict[str, list[str]] = {}
    for nodeid in collected:
        by_module.setdefault(module_of(nodeid), []).append(nodeid)
    return {
        module
        for module, nodeids in by_module.items()
        if module not in spoiled and all(clean.get(n, False) for n in nodeids)
    }


def selected_whole_suite(
    args: Iterable[str], invocation_dir: Path, rootpath: Path, testpaths: Iterable[str]
) -> bool:
    """Whether the command-line arguments name the whole suite (the testpaths, or a folder
    holding the rootdir), rather than part of it."""
    rootpath = rootpath.resolve()
    paths = {(rootpath / p).resolve() for p in testpaths}
    for arg in args:
        path = (invocation_dir / arg).resolve()
        if "::" in arg or not (path in paths or rootpath.is_relative_to(path)):
            return False
    return True


def ran_whole_suite(
    *,
    exitstatus: int,
    collected: set[str],
    clean: Mapping[str, bool],
    deselected: set[str],
    whole_suite_selected: bool,
) -> bool:
    if exitstatus != 0 or deselected or not collected:
        return False
    if not all(clean.get(nodeid, False) for nodeid in collected):
        return False
    return whole_suite_selected


def judge(
    *,
    tests: Mapping[str, set[str]],
    used: Mapping[str, set[str]],
    complete: set[str],
    whole_suite: bool,
    judged_at: dt.datetime,
    keys_of: Callable[[str], Iterable[str]],
) -> dict[str, Judgement]:
    """The verdicts this run can give: for each namespace it may speak for, the keys that
    ``keys_of`` (the namespace's index) holds and no test used.

    Only namespaces this run touched are judged: one it never touched may belong to another
    suite sharing the store (another testpath, a script), so silence is not proof. The
    indexes as this process read them suffice: an entry another process recorded meanwhile
    is newer than the run, and prune never drops entries newer than the run that judged them.
    """
    judged = {}
    for namespace in sorted(tests):
        modules = {module_of(nodeid) for nodeid in tests.get(namespace, ())}
        own_module = bool(modules) and all(
            module.removesuffix(".py") == namespace and module in complete for module in modules
        )
        if whole_suite or own_module:
            unused = set(keys_of(namespace)) - used.get(namespace, set())
            judged[namespace] = Judgement(judged_at, frozenset(unused))
    return judged
