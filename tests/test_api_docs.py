"""docs/api.md and the public API, one for one: nothing undocumented, nothing stale."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import castore
import castore.errors
from castore import Namespace, Recorder, Store

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def page() -> str:
    return API_PAGE.read_text(encoding="utf-8")


def public_members(cls: type, instance: object) -> set[str]:
    """Methods, properties and slots the class defines, plus the attributes an instance
    sets (a class with ``__slots__`` has no instance ``__dict__``)."""
    members = {name for name in vars(cls) if not name.startswith("_")}
    members |= {name for name in getattr(instance, "__dict__", {}) if not name.startswith("_")}
    return members


def documented_members(variable: str) -> set[str]:
    """``store.get(`` / ``store.root ->`` / ``with store.batch()`` in the code block."""
    block = page().split("```python", 1)[1].split("```", 1)[0]
    return set(re.findall(rf"\b{variable}\.([a-z_]+)\b", block))


def test_the_import_line_names_exactly_what_castore_exports() -> None:
    block = page().split("```python", 1)[1]
    imported = re.search(r"from castore import \(([^)]*)\)", block)
    assert imported is not None
    names = {name.strip() for name in imported.group(1).split(",") if name.strip()}
    assert names == set(castore.__all__)
    for name in castore.__all__:
        assert getattr(castore, name) is not None


def test_every_public_member_of_store_is_documented_and_no_other(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert documented_members("store") == public_members(Store, store)


def test_every_public_member_of_namespace_is_documented_and_no_other(tmp_path: Path) -> None:
    namespace = Store(tmp_path / "store").namespace("tests/test_x")
    assert documented_members("namespace") == public_members(Namespace, namespace)


def test_every_public_method_of_recorder_is_documented(tmp_path: Path) -> None:
    """Recorder's settings (mode, max_age…) are documented as its constructor's arguments."""
    methods = {
        name
        for name, member in vars(Recorder).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert documented_members("recorder") == methods


def test_the_error_table_lists_every_castore_error() -> None:
    errors = {
        name
        for name, member in vars(castore.errors).items()
        if isinstance(member, type)
        and issubclass(member, BaseException)
        and member.__module__ == castore.errors.__name__
        and name.endswith("Error")
    }
    table = page().split("## Errors", 1)[1]
    documented = set(re.findall(r"`([A-Z][A-Za-z]+Error)`", table))
    assert documented == errors


def test_the_error_tree_drawn_in_errors_py_is_the_class_tree() -> None:
    """The tree at the top of errors.py is what the classes really are."""
    drawn: dict[str, str] = {}
    parents: list[str] = []
    for line in (castore.errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+Error)\b", line)
        if not match or "Warning" in line:
            continue
        depth = (len(line) - len(line.lstrip(" │├└─"))) // 4 - 1
        name = match.group(2)
        del parents[depth:]
        if parents:
            drawn[name] = parents[-1]
        parents.append(name)
    actual = {
        name: cls.__mro__[1].__name__
        for name, cls in vars(castore.errors).items()
        if isinstance(cls, type)
        and issubclass(cls, castore.errors.CastoreError)
        and cls is not castore.errors.CastoreError
    }
    assert drawn == actual


def integrations_block() -> str:
    return page().split("The integrations", 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_every_option_of_the_http_recorder_is_documented_on_the_page_and_in_the_fixture() -> None:
    """docs/api.md and the castore_http fixture's docstring name each of HttpRecorder's
    options (issue 27: match_on and redact_body were missing from both)."""
    from castore import pytest_plugin  # noqa: PLC0415
    from castore.integrations.http import HttpRecorder  # noqa: PLC0415

    options = set(inspect.signature(HttpRecorder).parameters) - {"recorder"}
    block = integrations_block()
    assert {name for name in options if f"{name}=" not in block} == set()
    fixture_doc = inspect.getdoc(pytest_plugin.castore_http) or ""
    assert {name for name in options - {"test"} if f"``{name}``" not in fixture_doc} == set()
    methods = {name for name in vars(HttpRecorder) if not name.startswith("_")}
    documented = set(re.findall(r"\bhttp\.([a-z_]+)\b", block))
    assert (
        methods
        - {
            "passes_through",
            "answer",
            "answer_async",
            "recorded",
            "recorded_async",
            "note_error_answer",
            "match_on",
            "match_headers",
            "drop_query",
        }
        <= documented
    )


def test_every_public_name_of_the_integrations_is_on_the_page() -> None:
    import castore.integrations.http as http  # noqa: PLC0415
    import castore.integrations.vcr as vcr  # noqa: PLC0415

    block = integrations_block()
    public = set(http.__all__) | {
        name
        for name, member in vars(vcr).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or inspect.isclass(member))
        and member.__module__ == vcr.__name__
    }
    assert {name for name in public if name not in block} == set()
