"""Turning users' objects into storable values and back.

A recorder stores plain values (see ``_codec``). For anything else it needs a codec:
either the user's own ``serializer``/``deserializer`` pair (the seeds'
``SerializableResponseRecorder``), or a type it can handle out of the box: a pydantic v2
model, a dataclass, or a typing construct over those (``list[Answer]``,
``dict[str, Answer]``, ``Answer | None``…). Decoding failures surface as
:class:`ShapeError`, which the recorder reports as a stale recording.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, Protocol

from castore._recording import pydantic_models


class ShapeError(ValueError):
    """A stored value no longer fits the type (or deserializer) that should read it."""


class ValueCodec(Protocol):
    description: str

    def encode(self, value: Any) -> Any: ...

    def decode(self, data: Any) -> Any: ...


class PlainCodec:
    """Values that are already storable go in and out unchanged.

    A pydantic model or dataclass instance given without ``type=`` (the first thing a
    newcomer writes: ``get_or_record(key, lambda: client.chat.completions.create(...))``)
    is stored as ``{"$castore_type": "module:Qualname", "value": plain}`` and rebuilt on
    replay. Rebuilding only uses a class whose module is already imported, as it is by the
    test that uses it: a path in a store file never makes castore import anything. With
    ``auto_type=False`` the plain value comes back instead.
    """

    description = "plain values"

    def __init__(self, auto_type: bool = True) -> None:
        self.auto_type = auto_type

    def encode(self, value: Any) -> Any:
        if _is_typed_instance(value):
            return _wrapped(value)
        return value

    def decode(self, data: Any) -> Any:
        wrapper = _unwrapped(data)
        if wrapper is None:
            return data
        if not self.auto_type:
            return wrapper.value
        return _rebuild(wrapper, _loaded_class(wrapper.class_path))


#: The key of an auto-typed value's wrapper in the store.
TYPE_TAG = "$castore_type"


#: Beside ``value`` in a wrapper: a top-level model's plain private attributes
#: (``_request_id``) and the type marks of models nested in generic fields (see
#: ``pydantic_models``). Both are optional, and only written when there is something.
PRIVATE_FIELD = "private"
TYPES_FIELD = "types"


class _Wrapper(NamedTuple):
    class_path: str
    value: Any
    private: Mapping[str, Any]
    types: list[tuple[pydantic_models.Path, str]]


def _class_path(cls: type) -> str:
    cls = pydantic_models.origin_of(cls)
    return f"{cls.__module__}:{cls.__qualname__}"


def _wrapped(value: Any) -> dict[str, Any]:
    wrapper: dict[str, Any] = {TYPE_TAG: _class_path(type(value)), "value": to_plain(value)}
    if _is_pydantic_model(type(value)):
        private = pydantic_models.private_values(value)
        if private:
            wrapper[PRIVATE_FIELD] = private
        marks = pydantic_models.type_marks(value, _class_path)
        if marks:
            wrapper[TYPES_FIELD] = [[list(path), path_of] for path, path_of in marks]
    return wrapper


def _unwrapped(data: Any) -> _Wrapper | None:
    """The parts of an auto-typed value's wrapper, or None when ``data`` is not one."""
    if not (isinstance(data, dict) and TYPE_TAG in data and "value" in data):
        return None
    if not set(data) <= {TYPE_TAG, "value", PRIVATE_FIELD, TYPES_FIELD}:
        return None  # a user's own dict that happens to use the tag
    private = data.get(PRIVATE_FIELD, {})
    marks = data.get(TYPES_FIELD, [])
    if not isinstance(private, dict) or not isinstance(marks, list):
        raise ShapeError(f"the {TYPE_TAG} wrapper's {PRIVATE_FIELD}/{TYPES_FIELD} are malformed")
    types_: list[tuple[pydantic_models.Path, str]] = []
    for mark in marks:
        if not (
            isinstance(mark, list | tuple)
            and len(mark) == 2
            and isinstance(mark[0], list | tuple)
            and all(isinstance(step, str | int) for step in mark[0])
        ):
            raise ShapeError(f"the {TYPE_TAG} wrapper has a malformed type mark {mark!r:.80}")
        types_.append((tuple(mark[0]), mark[1]))
    return _Wrapper(data[TYPE_TAG], data["value"], private, types_)


def _rebuild(wrapper: _Wrapper, target: Any) -> Any:
    """The object a wrapper (or a bare typed value) stands for, as ``target``."""
    try:
        marks = [(path, _loaded_class(path_of)) for path, path_of in wrapper.types]
        value = pydantic_models.apply_type_marks(
            wrapper.value, marks, lambda data, cls: from_plain(data, cls, "value")
        )
        built = from_plain(value, target, "value")
    except ShapeError:
        raise
    except Exception as error:  # a model's own validation error, a __post_init__ check
        raise ShapeError(f"{type(error).__name__}: {error}") from error
    if wrapper.private and _is_pydantic_model(type(built)):
        pydantic_models.restore_private(built, wrapper.private)
    return built


def _is_typed_instance(value: Any) -> bool:
    if isinstance(value, type):
        return False
    return dataclasses.is_dataclass(value) or _is_pydantic_model(type(value))


def _loaded_class(path: Any) -> Any:
    """The class an auto-typed value names, from a module already imported."""
    if not isinstance(path, str) or ":" not in path:
        raise ShapeError(f"{TYPE_TAG} {path!r:.80} is not 'module:Qualname'")
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        raise ShapeError(
            f"it was recorded as a {qualname} from {module_name}, which this process has not "
            f"imported; import {module_name} in the test, pass type=, or Recorder(..., "
            "auto_type=False) for plain data"
        )
    found: Any = module
    for part in qualname.split("."):
        if part.startswith("__") or not hasattr(found, part):
            raise ShapeError(f"{module_name} has no class {qualname}")
        found = getattr(found, part)
    if not isinstance(found, type) or not (
        dataclasses.is_dataclass(found) or _is_pydantic_model(found)
    ):
        raise ShapeError(f"{path} is not a dataclass or a pydantic model")
    return found


class FunctionCodec:
    """The user's own serializer/deserializer pair."""

    def __init__(
        self,
        serializer: Callable[[Any], Any] | None,
        deserializer: Callable[[Any], Any] | None,
    ) -> None:
        self._serializer = serializer
        self._deserializer = deserializer
        name = getattr(deserializer, "__qualname__", None) or "the deserializer"
        self.description = f"deserializer {name}"

    def encode(self, value: Any) -> Any:
        return value if self._serializer is None else self._serializer(value)

    def decode(self, data: Any) -> Any:
        if self._deserializer is None:
            return data
        try:
            return self._deserializer(data)
        except Exception as error:
            raise ShapeError(f"{type(error).__name__}: {error}") from error


class TypeCodec:
    """Dataclasses, pydantic v2 models and typing constructs over them, by type hints."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.description = f"type {_type_name(target)}"

    def encode(self, value: Any) -> Any:
        if _is_pydantic_model(type(value)):
            wrapper = _wrapped(value)
            if len(wrapper) > 2:  # private attributes or type marks to keep
                return wrapper
        return to_plain(value)

    def decode(self, data: Any) -> Any:
        wrapper = _unwrapped(data)
        if wrapper is None:
            wrapper = _Wrapper("", data, {}, [])
        return _rebuild(wrapper, self.target)


def make_codec(
    target: Any,
    serializer: Callable[[Any], Any] | None,
    deserializer: Callable[[Any], Any] | None,
    auto_type: bool = True,
) -> ValueCodec:
    if target is not None and (serializer or deserializer):
        raise TypeError("give a recorder either type= or serializer=/deserializer=, not both")
    if serializer or deserializer:
        return FunctionCodec(serializer, deserializer)
    if target is None:
        return _PLAIN_CODECS[bool(auto_type)]
    return TypeCodec(target)


#: Plain codecs hold nothing but their flag: shared, since a session makes a recorder per test.
_PLAIN_CODECS: Final = {True: PlainCodec(True), False: PlainCodec(False)}


def _type_name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or repr(target)


_is_pydantic_model = pydantic_models.is_model_class


def to_plain(value: Any) -> Any:
    """An instance of dataclasses / pydantic models / enums, as storable plain values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.init
        }
    if _is_pydantic_model(type(value)):
        # JSON mode gives storable values for any field type (UUID, Decimal, enums…) and
        # pydantic validates them back into the same types on replay.
        return pydantic_models.dump(value)
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, Mapping):
        return {to_plain(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_plain(item) for item in value)
    if isinstance(value, set | frozenset):
        return type(value)(to_plain(item) for item in value)
    return value


_SIMPLE = (str, bytes, bool, int, float, type(None))


def from_plain(data: Any, target: Any, where: str) -> Any:
    """Rebuild a value of type ``target`` from its plain form; ShapeError says where it broke."""
    if target is Any or target is object:
        return data
    origin = typing.get_origin(target)
    if origin is typing.Annotated:
        return from_plain(data, typing.get_args(target)[0], where)
    if origin in (typing.Union, types.UnionType):
        return _from_union(data, target, where)
    if origin is typing.Literal:
        if data not in typing.get_args(target):
            raise ShapeError(f"{where}: {data!r} is not one of {typing.get_args(target)}")
        return data
    if origin is not None:
        return _from_generic(data, origin, typing.get_args(target), where)
    if _is_pydantic_model(target):
        return pydantic_models.build(target, data)
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        return _from_dataclass(data, target, where)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        try:
            return target(data)
        except ValueError:
            raise ShapeError(f"{where}: {data!r} is not a {target.__qualname__}") from None
    if target in _SIMPLE:
        if target is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if not isinstance(data, target) or (target is int and isinstance(data, bool)):
            raise ShapeError(
                f"{where}: expected {target.__name__}, found {type(data).__name__} {data!r}"
            )
        return data
    return data  # other annotations (datetime, a TypeVar…) are trusted as stored


def _from_union(data: Any, target: Any, where: str) -> Any:
    members = typing.get_args(target)
    if data is None and type(None) in members:
        return None
    problems = []
    for member in members:
        if member is type(None):
            continue
        try:
            return from_plain(data, member, where)
        except (ShapeError, TypeError, ValueError) as error:
            problems.append(str(error))
    raise ShapeError(f"{where}: fits none of {target}: {'; '.join(problems)}")


def _from_generic(data: Any, origin: Any, args: tuple[Any, ...], where: str) -> Any:
    if origin in (list, set, frozenset) or (origin is tuple and args[-1:] == (Ellipsis,)):
        if not isinstance(data, list | tuple | set | frozenset):
            raise ShapeError(f"{where}: expected a sequence, found {type(data).__name__}")
        item_type = args[0] if args else Any
        items = [from_plain(item, item_type, f"{where}[{n}]") for n, item in enumerate(data)]
        return origin(items)
    if origin is tuple:
        if not isinstance(data, list | tuple) or len(data) != len(args):
            raise ShapeError(f"{where}: expected a tuple of {len(args)} items, found {data!r}")
        return tuple(
            from_plain(item, item_type, f"{where}[{n}]")
            for n, (item, item_type) in enumerate(zip(data, args, strict=True))
        )
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        if not isinstance(data, Mapping):
            raise ShapeError(f"{where}: expected a mapping, found {type(data).__name__}")
        key_type, value_type = args if args else (Any, Any)
        return {
            from_plain(key, key_type, f"{where} key"): from_plain(
                item, value_type, f"{where}[{key!r}]"
            )
            for key, item in data.items()
        }
    return data


def _from_dataclass(data: Any, target: type, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ShapeError(f"{where}: expected the fields of {target.__qualname__}, found {data!r}")
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # unresolvable forward references: trust the stored data
        hints = {}
    fields = {field.name: field for field in dataclasses.fields(target) if field.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ShapeError(
            f"{where}: {target.__qualname__} has no field(s) {', '.join(map(repr, unknown))}"
        )
    missing = [
        name
        for name, field in fields.items()
        if name not in data
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ShapeError(f"{where}: field(s) {', '.join(map(repr, missing))} missing")
    kwargs = {
        name: from_plain(value, hints.get(name, Any), f"{where}.{name}")
        for name, value in data.items()
    }
    return target(**kwargs)
