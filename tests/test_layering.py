"""The house rules of docs/architecture.md, checked: who may import whom, and who touches blobs.

The import graph is read from the source (``ast``), so the check needs no import side
effects and sees imports inside functions too. Imports under ``if TYPE_CHECKING:`` carry
no run-time edge and are left out of the cycle check, but not out of the layer check: a
layer that needs an upper layer's type has its design upside down.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "castore"

#: What each layer may import from castore (besides itself). Lower layers come first.
ALLOWED: dict[str, set[str]] = {
    "castore.errors": set(),
    "castore._storage": {"castore.errors"},
    "castore._recording": {"castore.errors", "castore._storage"},
    "castore._upkeep": {"castore.errors", "castore._storage", "castore._recording"},
    # The session runs upkeep itself (automatic packing, as git runs gc --auto).
    "castore._pytest": {
        "castore.errors",
        "castore._storage",
        "castore._recording",
        "castore._upkeep",
    },
    # Integrations are written against the public face only, as a user's conftest would be.
    "castore.integrations": {"castore", "castore.errors"},
}

#: The faces users touch: the only modules allowed at the package's top level.
FACES = {"__init__", "__main__", "errors", "pytest_plugin"}
#: Faces large enough to be a package of their own (one module per command group).
FACE_PACKAGES = {"cli"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, package_dir: Path) -> Iterator[tuple[str, bool]]:
    """Every castore module ``path`` imports, and whether only for type checking."""
    this = module_name(path, package_dir)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    yield from imports_in(path.read_text(), package)


@functools.cache
def imports_in(source: str, package: str) -> tuple[tuple[str, bool], ...]:
    """:func:`imports_of` for a module's ``source`` in ``package``. Cached: the three
    checks (and the copy with a planted module) read the same sources, and parsing
    castore's modules costs 0.7 s of CPU each time."""
    return tuple(_imports_in(source, package))


def _imports_in(source: str, package: str) -> Iterator[tuple[str, bool]]:
    tree = ast.parse(source)

    def visit(node: ast.AST, typing_only: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = typing_only or is_type_checking_block(child)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, inner
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, inner
                for alias in child.names:  # ``from castore._storage import core``
                    yield f"{base}.{alias.name}", inner
            yield from visit(child, inner)

    for name, typing_only in visit(tree, False):
        if name == "castore" or name.startswith("castore."):
            yield name, typing_only


def package_modules(package: Path) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, bool]]:
    """module -> {imported module: typing only}, restricted to modules that exist."""
    modules = package_modules(package)
    graph: dict[str, dict[str, bool]] = {}
    for name, path in modules.items():
        edges: dict[str, bool] = {}
        for target, typing_only in imports_of(path, package):
            if target in modules and target != name:
                edges[target] = edges.get(target, True) and typing_only
        graph[name] = edges
    return graph


def test_the_top_level_holds_only_the_faces() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top <= FACES, f"modules at castore/'s top level that are not faces: {top - FACES}"
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    layers = {"_storage", "_recording", "_pytest", "_upkeep", "integrations"}
    assert subpackages == layers | FACE_PACKAGES


def upward_imports(package: Path) -> list[str]:
    wrong = []
    for module, edges in import_graph(package).items():
        layer = layer_of(module)
        if layer not in ALLOWED:
            continue  # the faces may import anything below them
        for target in edges:
            target_layer = layer_of(target)
            if target_layer != layer and target_layer not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    return wrong


def test_no_layer_imports_a_layer_above_its_own() -> None:
    wrong = upward_imports(PACKAGE)
    assert not wrong, "imports against docs/architecture.md's rules:\n" + "\n".join(wrong)


def test_the_import_graph_has_no_cycles() -> None:
    graph = {
        module: [target for target, typing_only in edges.items() if not typing_only]
        for module, edges in import_graph().items()
    }
    # A package __init__ importing its own submodules is how re-exports work, not a cycle.
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    cycles = [cycle for cycle in cycles if not is_reexport(cycle)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def is_reexport(cycle: list[str]) -> bool:
    """``castore`` -> ``castore._x`` -> ``castore``: only the package face closes such loops,
    and only because every module's import first runs ``castore/__init__.py``."""
    return cycle[0] == "castore" or cycle[-1] == "castore"


def copy_of_package(tmp_path: Path) -> Path:
    copy = tmp_path / "castore"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a storage module importing the recorder is caught, also when
    the import sits inside a function or under TYPE_CHECKING."""
    package = copy_of_package(tmp_path)
    (package / "_storage" / "planted.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from castore._pytest import session\n"
        "def f() -> None:\n"
        "    from .._recording.recorder import Recorder\n"
    )
    assert upward_imports(package) == [
        "castore._storage.planted imports castore._pytest",
        "castore._storage.planted imports castore._pytest.session",
        "castore._storage.planted imports castore._recording.recorder",
    ]


# --- who touches blob files --------------------------------------------------------------

#: Run in a child: an audit hook cannot be removed, and the child must start clean.
BLOB_AUDIT = textwrap.dedent(
    r"""
    import json, os, sys
    from pathlib import Path

    root = Path(sys.argv[1]).resolve()
    watched = (str(root / "blobs"), str(root / "packs"))
    allowed = os.sep + os.path.join("castore", "_storage", "files") + os.sep
    offenders = {}
    touched = [0]
    paused = [False]

    def paths_of(event, args):
        if event in ("open", "os.remove", "os.listdir", "os.scandir", "os.truncate",
                     "os.chmod", "os.utime", "shutil.move", "shutil.rmtree"):
            return args[:1]
        if event in ("os.rename", "os.link", "os.symlink", "shutil.copyfile"):
            return args[:2]
        return ()

    def hook(event, args):
        if paused[0]:
            return
        for path in paths_of(event, args):
            if isinstance(path, int) or path is None:
                continue
            text = os.path.abspath(os.fsdecode(path))
            if not any(text == place or text.startswith(place + os.sep) for place in watched):
                continue
            touched[0] += 1
            frame = sys._getframe(1)
            castore_frames = []
            while frame is not None:
                name = frame.f_code.co_filename
                if os.sep + "castore" + os.sep in name:
                    castore_frames.append(name)
                frame = frame.f_back
            if castore_frames and not any(allowed in name for name in castore_frames):
                innermost = castore_frames[0].rsplit(os.sep + "castore" + os.sep, 1)[1]
                offenders.setdefault(innermost, event)

    import castore.cli
    from click.testing import CliRunner
    from castore import Store

    sys.addaudithook(hook)
    store = Store(root)
    for i in range(40):
        answer = f"The answer to question {i} is {i * 7}. " * (5 + i % 9)
        store.put("tests/test_a", f"key {i}", {"answer": answer, "i": i})
    store.put("tests/test_b", "shared", {"answer": "x" * 300})
    store.get("tests/test_a", "key 3")
    store.delete("tests/test_a", "key 39")
    for blob in store.blobs():
        store.read_blob(blob.digest)
    some = next(iter(store.blobs()))
    runner = CliRunner()
    export = Path(sys.argv[2])

    def cli(*args):
        result = runner.invoke(castore.cli.main, ["--root", str(root), *args])
        assert result.exit_code in (0, 1), (args, result.output, result.exception)

    cli("verify")
    cli("stats")
    cli("show", "tests/test_a", "key 2")
    cli("cat", str(some.path))
    cli("export", "tests/test_a", "-o", str(export))
    cli("import", str(export), "--prefix", "imported/")
    cli("train-dictionary", "--size", "2048")
    cli("gc")
    paused[0] = True  # damage one blob, as a bad checkout would, unseen by the audit
    victim = store.entry("tests/test_b", "shared").blob
    damaged = root / "blobs" / victim[:2] / f"{victim}.zst"
    damaged.write_bytes(damaged.read_bytes()[:-3])
    paused[0] = False
    cli("verify", "--quarantine")
    cli("gc")
    cli("pack")
    for blob in Store(root).blobs():
        Store(root).read_blob(blob.digest)
    cli("cat", next(iter(Store(root).blobs())).digest)
    cli("verify")
    cli("stats")
    cli("show", "tests/test_a", "key 5")
    store.delete("tests/test_a", "key 1")
    cli("gc", "--max-unused", "0%")
    cli("pack", "--repack")
    cli("train-dictionary", "--size", "2048")
    print(json.dumps({"touched": touched[0], "offenders": offenders,
                      "castore": castore.__file__}))
    """
)


def test_only_the_file_seam_touches_blob_files(tmp_path: Path) -> None:
    """put, get, read_blob and every CLI command that reads blobs go through the file
    seam: no module outside ``_storage/files/`` opens, lists, renames or deletes a file
    under ``blobs/`` or ``packs/``, loose or packed (the blob layout above it included)."""
    script = tmp_path / "audit.py"
    script.write_text(BLOB_AUDIT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), str(tmp_path / "export.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["touched"] > 20  # the hook saw the blob traffic it is meant to judge
    assert report["offenders"] == {}


def test_the_blob_audit_sees_a_module_that_opens_blobs_itself(tmp_path: Path) -> None:
    """The audit itself: a read of a blob file from outside ``_storage/files`` is named."""
    script = tmp_path / "audit.py"
    package = copy_of_package(tmp_path)
    (package / "_upkeep" / "planted_reader.py").write_text(
        "from pathlib import Path\n\n"
        "def read_all(root: Path) -> None:\n"
        "    for path in (root / 'blobs').rglob('*.zst'):\n"
        "        path.read_bytes()\n"
    )
    script.write_text(
        BLOB_AUDIT.replace(
            "print(json.dumps(",
            "from castore._upkeep.planted_reader import read_all\n"
            "read_all(root)\nprint(json.dumps(",
        )
    )
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["castore"] == str(package / "__init__.py")  # the copy ran, not the tree
    assert list(report["offenders"]) == ["_upkeep/planted_reader.py"]
