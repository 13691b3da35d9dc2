"""Public classes say they come from ``castore``, whichever private module defines them.

Each such class calls :func:`present_as_public` where it is defined, so that it holds
however it is reached: ``castore.Entry``, a pickle, a traceback, or an object a private
module handed out before anything asked ``castore`` for the class (``castore`` imports
some of them lazily). Reprs, tracebacks and pickles then name the public path, which
stays put when the private modules move, as httpx's do.
"""

from __future__ import annotations

import inspect
import typing

PUBLIC_MODULE = "castore"


def present_as_public(*classes: type) -> None:
    """Make each class report ``castore`` as its module.

    Its annotations (and a dataclass's field types) are resolved first, where they were
    written: ``typing.get_type_hints`` and pydantic evaluate a class's string annotations
    in the namespace of ``cls.__module__``, which is ``castore`` afterwards. A class whose
    annotations name types only imported for type checking keeps its strings. Call it at
    the end of the module, once every name the annotations use is defined.
    """
    for cls in classes:
        own = inspect.get_annotations(cls)
        if own:  # nothing to resolve (Recorder, Store...): skip evaluating its bases'
            try:
                hints = typing.get_type_hints(cls, include_extras=True)
            except NameError:
                hints = {}
            if hints:
                cls.__annotations__ = {name: hints.get(name, value) for name, value in own.items()}
                for field in getattr(cls, "__dataclass_fields__", {}).values():
                    field.type = hints.get(field.name, field.type)
        cls.__module__ = PUBLIC_MODULE
