"""castore's public face: every type a public signature names can be imported from a
public place, and public classes say they come from ``castore``.

The walk starts at what users touch (``castore.__all__``, ``castore.errors``, the pytest
plugin's fixtures), reads each callable's annotations, and follows every castore class it
meets to that class's own methods, properties and fields.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import importlib
import inspect
import pickle
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import castore
import castore.errors
import castore.pytest_plugin
from castore import BlobFile, Entry, Miss, Mode, Problem, StoreConfig, StreamKind

#: Constructors users never call: the store makes these objects and hands them out.
MADE_BY_CASTORE: dict[type, str] = {castore.Namespace: "Store.namespace() makes it"}


def named_types(annotation: Any) -> Iterator[type]:
    """The classes an annotation names: ``Mapping[str, Entry] | None`` gives Mapping, str
    and Entry."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return
    if origin is not None:
        if isinstance(origin, type) and origin is not types.UnionType:
            yield origin
        for argument in typing.get_args(annotation):
            yield from named_types(argument)
    elif isinstance(annotation, type):
        yield annotation
    elif isinstance(annotation, list):  # Callable[[A, B], C]'s argument list
        for item in annotation:
            yield from named_types(item)


def public_callables(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    """A class's constructor (unless castore makes it), public methods and properties."""
    if cls not in MADE_BY_CASTORE and "__init__" in vars(cls):
        yield f"{cls.__name__}.__init__", cls.__init__
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        if isinstance(member, property) and member.fget is not None:
            yield f"{cls.__name__}.{name}", member.fget
        elif inspect.isfunction(member) or inspect.ismethod(member):
            yield f"{cls.__name__}.{name}", member


@functools.cache
def typing_only_names(module_name: str) -> dict[str, Any]:
    """What a module imports under ``if TYPE_CHECKING:`` (to keep an import lazy), run
    here so that its annotations resolve. Once per module: the walk asks for each of the
    few hundred callables it reads, and parsing and walking the source was all its time."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            exec(compile(ast.Module(node.body, []), module_name, "exec"), names)
    return names


def hints(target: Any, where: str) -> dict[str, Any]:
    module = getattr(target, "__module__", None) or "castore"
    try:
        return typing.get_type_hints(target, localns=typing_only_names(module))
    except NameError as error:
        pytest.fail(f"{where}: an annotation names a type castore cannot resolve: {error}")


def starting_points() -> Iterator[tuple[str, Any]]:
    for name in castore.__all__:
        yield f"castore.{name}", getattr(castore, name)
    for name, member in vars(castore.errors).items():
        if isinstance(member, type) and issubclass(member, Exception):
            yield f"castore.errors.{name}", member
    for name, member in vars(castore.pytest_plugin).items():
        wrapped = getattr(member, "_get_wrapped_function", None)
        if wrapped is not None:  # a fixture
            yield f"fixture {name}", wrapped()


def signature_types() -> dict[type, set[str]]:
    """Every class a public signature names -> where it is named."""
    found: dict[type, set[str]] = {}
    seen: set[type] = set()
    pending = list(starting_points())
    while pending:
        where, target = pending.pop()
        if isinstance(target, type):
            if target in seen:
                continue
            seen.add(target)
            callables = [*public_callables(target), (where, target)]  # fields, attributes
        else:
            callables = [(where, target)]
        for name, member in callables:
            for annotation in hints(member, name).values():
                for named in named_types(annotation):
                    found.setdefault(named, set()).add(name)
                    if named.__module__.split(".")[0] == "castore":
                        pending.append((named.__qualname__, named))
    return found


def public_path(cls: type) -> str | None:
    """Where ``cls`` can be imported from without naming a private module, if anywhere."""
    module = cls.__module__
    if any(part.startswith("_") for part in module.split(".")):
        return None
    imported = importlib.import_module(module)
    return f"{module}.{cls.__qualname__}" if getattr(imported, cls.__name__, None) is cls else None


def test_every_type_a_public_signature_names_can_be_imported_from_a_public_module() -> None:
    """Issue 27: users imported StoreConfig, BlobFile, StreamKind, Problem and Miss from
    private modules (a RecordingListener cannot be written without Problem)."""
    found = signature_types()
    castore_types = {cls for cls in found if cls.__module__.split(".")[0] == "castore"}
    assert {Entry, Problem, Miss, Mode, StoreConfig, BlobFile, StreamKind} <= castore_types
    hidden = {
        f"{cls.__module__}.{cls.__qualname__} (named by {', '.join(sorted(found[cls]))})"
        for cls in castore_types
        if public_path(cls) is None
    }
    assert not hidden, "types only importable from private modules:\n" + "\n".join(hidden)


def test_the_walk_sees_a_type_left_out_of_castore(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: a class named by a public signature but not exported is caught."""
    monkeypatch.setattr(Problem, "__module__", "castore._recording.staleness")
    monkeypatch.delattr(castore, "Problem")
    monkeypatch.setattr(castore, "__all__", [name for name in castore.__all__ if name != "Problem"])
    assert public_path(Problem) is None
    assert "RecordingListener.missed" in signature_types()[Problem]


def test_public_classes_say_they_come_from_castore() -> None:
    exported = [getattr(castore, name) for name in castore.__all__]
    classes = [member for member in exported if isinstance(member, type)]
    assert {cls.__module__ for cls in classes} == {"castore"}
    for cls in classes:
        assert public_path(cls) == f"castore.{cls.__name__}"
    assert repr(Entry) == "<class 'castore.Entry'>"
    entry = Entry(blob="ab" * 32, size=3, recorded_at=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
    assert "_storage" not in repr(entry) + repr(type(entry)) + repr(Mode.NONE)


def test_public_values_pickle_under_their_public_names(run_python: Callable[..., Any]) -> None:
    """Pickles name ``castore.Entry``, not the private module, and load in a fresh
    interpreter that imported nothing of castore beforehand."""
    values = [
        Entry(blob="ab" * 32, size=3, recorded_at=dt.datetime(2025, 1, 2, tzinfo=dt.UTC)),
        Problem(Miss.EXPIRED, "too old"),
        Mode.NEW_EPISODES,
        StreamKind.SYNC,
        StoreConfig(level=3, dictionaries={40000: "cd" * 32}),
        BlobFile(digest="ab" * 32, path=Path("/tmp/x.zst"), size=10, mtime=0.0),
    ]
    data = pickle.dumps(values)
    assert b"castore._" not in data
    loaded = run_python(
        "import pickle, sys; values = pickle.loads(bytes.fromhex(sys.argv[1])); "
        "print(repr(values))",
        data.hex(),
    )
    assert loaded.stdout.strip() == repr(values)


def test_type_introspection_still_resolves_after_the_move() -> None:
    """get_type_hints and pydantic read a class's annotations in the namespace of its
    ``__module__``: castore resolved them before saying it is ``castore``."""
    for name in castore.__all__:
        member = getattr(castore, name)
        if isinstance(member, type):
            typing.get_type_hints(member)
    adapter = pydantic.TypeAdapter(Entry)
    entry = adapter.validate_python(
        {"blob": "ab" * 32, "size": 3, "recorded_at": "2025-01-02T00:00:00Z", "stream": "sync"}
    )
    assert entry.stream is StreamKind.SYNC
    assert adapter.dump_python(entry, mode="json")["recorded_at"] == "2025-01-02T00:00:00Z"
