"""Pydantic models stored so that a replay gives back the object the live call gave.

Three things a plain ``model_dump``/``model_validate`` round trip loses, and the SDKs'
users notice (each one was a bug report against castore):

* **How the SDK builds its objects.** openai's and anthropic's models (Stainless-generated)
  are built from the server's JSON by their own recursive ``construct``, without
  validation: a provider answering ``finish_reason: "eos"`` gives a usable object live.
  Rebuilding with ``model_validate`` refused it. Such models are dumped as the server
  sent them (set fields only, wire aliases) and rebuilt with that same ``construct``, so
  the fields-set matches and ``model_dump(exclude_unset=True)``/``to_json()`` agree.
* **Private attributes,** ``_request_id`` above all. It lives outside the model's fields,
  on the top-level object only. Plain (str, number, bool, None) private values of the
  top-level model are kept beside the value and set back on replay.
* **Values in generic fields.** ``client.chat.completions.parse(response_format=Answer)``
  returns a ``ParsedChatCompletion`` whose ``message.parsed`` field is typed by a TypeVar
  and holds an ``Answer``. Dumping it warned (failing ``-W error``) and rebuilding gave a
  dict. Each nested model whose field's annotation does not name its class is recorded
  as a *type mark* (its path and class), and rebuilt as that class.

Classes are named ``module:Qualname`` and only ever taken from modules the process has
already imported (see ``usertypes``).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

#: A nested model's place in the dumped value: keys and list indexes from the top.
Path = tuple[str | int, ...]

_PRIVATE_SCALARS = (str, int, float, bool, type(None))


def is_model_class(target: Any) -> bool:
    """A pydantic v2 model class (found by its API: castore does not import pydantic)."""
    return isinstance(target, type) and hasattr(target, "model_validate")


def builds_without_validation(cls: type) -> bool:
    """True for models with their own recursive ``construct`` (openai's and anthropic's
    BaseModel): pydantic's own ``construct`` is a deprecated, shallow alias."""
    for base in cls.__mro__:
        if "construct" in vars(base):
            return not base.__module__.startswith("pydantic")
    return False


def origin_of(cls: type) -> type:
    """``ParsedChatCompletion`` for ``ParsedChatCompletion[~ResponseFormatT]``: the class a
    module defines, which is what a stored path can name."""
    metadata = getattr(cls, "__pydantic_generic_metadata__", None) or {}
    origin = metadata.get("origin")
    return origin if isinstance(origin, type) else cls


def dump(model: Any) -> Any:
    """A model's storable plain form (JSON types), as its class will be rebuilt from it."""
    options: dict[str, Any] = {"mode": "json"}
    if builds_without_validation(type(model)):
        options.update(by_alias=True, exclude_unset=True)  # what the server sent
    else:
        options.update(round_trip=True)  # every field, so validation sees what it needs
    try:
        # By the values' own classes: an Answer in a TypeVar field dumps without a warning.
        return model.model_dump(serialize_as_any=True, **options)
    except TypeError:  # pydantic before 2.7 has no serialize_as_any
        return model.model_dump(warnings=False, **options)


def build(cls: type, data: Any) -> Any:
    """Rebuild ``cls`` from :func:`dump`'s form, the way its class builds itself."""
    if builds_without_validation(cls):
        if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
            raise TypeError(f"expected the fields of {cls.__qualname__}, found {data!r:.80}")
        return cls.construct(**data)  # type: ignore[attr-defined]
    return cls.model_validate(data)  # type: ignore[attr-defined]


def private_values(model: Any) -> dict[str, Any]:
    """The top-level model's plain private attributes (``_request_id``, ``_workspace_id``)."""
    found: dict[str, Any] = {}
    declared = getattr(model, "__pydantic_private__", None) or {}
    undeclared = {
        name: value
        for name, value in vars(model).items()
        if name.startswith("_") and not name.startswith("__")
    }
    for name, value in {**declared, **undeclared}.items():
        if isinstance(value, _PRIVATE_SCALARS):
            found[name] = value
    return found


def restore_private(model: Any, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(name, str) and name.startswith("_") and not name.startswith("__"):
            setattr(model, name, value)  # as the SDKs set _request_id


def type_marks(model: Any, class_path: Callable[[type], str]) -> list[tuple[Path, str]]:
    """Nested models that a rebuild from the annotations alone would not rebuild as their
    own class (a model in a TypeVar or ``Any`` field), deepest first."""
    marks: list[tuple[Path, str]] = []
    _walk_model(model, (), marks, class_path)
    marks.sort(key=lambda mark: -len(mark[0]))
    return marks


def apply_type_marks(
    data: Any, marks: list[tuple[Path, type]], build_as: Callable[[Any, type], Any]
) -> Any:
    """``data`` with each marked place rebuilt as its class, deepest first. The stored
    value is never mutated (a store may hand out the same decoded value twice)."""
    for path, cls in marks:
        data = _replace(data, path, functools.partial(_build_swapped, build_as, cls))
    return data


def _build_swapped(build_as: Callable[[Any, type], Any], cls: type, data: Any) -> Any:
    return build_as(data, cls)


def _walk_model(
    model: Any, path: Path, marks: list[tuple[Path, str]], class_path: Callable[[type], str]
) -> None:
    cls = type(model)
    fields = origin_of(cls).model_fields  # type: ignore[attr-defined]
    sdk = builds_without_validation(cls)
    for name in type(model).model_fields:
        if sdk and name not in model.model_fields_set:
            continue  # not dumped, so nothing to mark
        field = fields.get(name)
        key = (field.alias or name) if sdk and field is not None else name
        annotation = field.annotation if field is not None else Any
        _walk_value(getattr(model, name, None), annotation, (*path, key), marks, class_path)


def _walk_value(
    value: Any,
    annotation: Any,
    path: Path,
    marks: list[tuple[Path, str]],
    class_path: Callable[[type], str],
) -> None:
    if is_model_class(type(value)):
        if not _annotation_builds(annotation, type(value)):
            marks.append((path, class_path(origin_of(type(value)))))
        _walk_model(value, path, marks, class_path)
    elif isinstance(value, list | tuple):
        item = _item_annotation(annotation, 0)
        for index, member in enumerate(value):
            _walk_value(member, item, (*path, index), marks, class_path)
    elif isinstance(value, Mapping):
        item = _item_annotation(annotation, 1)
        for key, member in value.items():
            if isinstance(key, str):
                _walk_value(member, item, (*path, key), marks, class_path)


def _annotation_builds(annotation: Any, cls: type) -> bool:
    """Would a rebuild from ``annotation`` make an instance of ``cls``'s class?"""
    origin = origin_of(cls)
    for member in _members(annotation):
        if isinstance(member, type) and origin_of(member) is origin:
            return True
        if typing.get_origin(member) is not None and typing.get_origin(member) is origin:
            return True
    return False


def _members(annotation: Any) -> list[Any]:
    """The alternatives an annotation allows: Optional, unions and Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [found for member in typing.get_args(annotation) for found in _members(member)]
    return [annotation]


def _item_annotation(annotation: Any, position: int) -> Any:
    """A list's item type (position 0) or a dict's value type (1), else ``Any``."""
    for member in _members(annotation):
        args = typing.get_args(member)
        origin = typing.get_origin(member)
        if origin in (list, tuple, set, frozenset) and args and position == 0:
            return args[0]
        if origin in (dict, Mapping) and len(args) == 2 and position == 1:
            return args[1]
    return Any


def _replace(data: Any, path: Path, rebuild: Callable[[Any], Any]) -> Any:
    if not path:
        return rebuild(data)
    head, rest = path[0], path[1:]
    if isinstance(data, Mapping) and isinstance(head, str) and head in data:
        return {**data, head: _replace(data[head], rest, rebuild)}
    if isinstance(data, list | tuple) and isinstance(head, int) and 0 <= head < len(data):
        copied = list(data)
        copied[head] = _replace(data[head], rest, rebuild)
        return type(data)(copied) if isinstance(data, tuple) else copied
    raise TypeError(f"a type mark names {'/'.join(map(str, path))}, which the value lacks")
