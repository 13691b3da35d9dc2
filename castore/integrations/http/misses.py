"""A missing recording, raised as the client's own connection error.

Offline, a client raises its connection error (httpx's ``ConnectError``, aiohttp's
``ClientConnectorError``…), and code built on it knows what to do: litellm falls back to its
bundled price map, an SDK retries then raises its ``APIConnectionError``. A replay that
misses behaves the same: the error castore raises *is* the client's connection error, and
also castore's :class:`~castore.errors.MissingRecordingError` (or
:class:`~castore.errors.StaleRecordingError`), with castore's message. Code that catches
it anyway does not turn the miss into a pass: the pytest plugin fails the test with the
message at the end (the session noted the miss when it happened).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from castore.errors import CastoreError

_classes: dict[tuple[type, type], type] = {}


def as_client_error(
    error: CastoreError, client_error: type[BaseException], init: Callable[[Any, str], None]
) -> BaseException:
    """``error`` as an instance of both its own class and ``client_error``; ``init``
    initialises the client's side (``init(instance, message)``) as the client would."""
    key = (type(error), client_error)
    combined = _classes.get(key)
    if combined is None:
        # Named as castore's error (what a traceback should lead with), yet an instance
        # of the client's: ``except httpx.ConnectError`` and ``except
        # MissingRecordingError`` both catch it.
        client_name = f"{client_error.__module__}.{client_error.__qualname__}"
        combined = _classes[key] = type(
            type(error).__name__,
            (type(error), client_error),
            {
                "__module__": type(error).__module__,
                "__str__": lambda self: self._castore_message,
                "__doc__": f"castore's {type(error).__name__}, raised as the client's own "
                f"connection error, {client_name}.",
            },
        )
    instance: Any = client_error.__new__(combined)  # the client side may be an OSError: its __new__
    instance.__dict__.update(error.__dict__)
    message = f"{error}\n  (raised as {client_error.__module__}.{client_error.__qualname__}, "
    message += "the error this client raises offline)"
    instance._castore_message = message
    init(instance, message)
    instance.__cause__ = None
    instance.__suppress_context__ = True
    return instance  # type: ignore[no-any-return]
