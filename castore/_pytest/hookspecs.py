"""Hooks castore offers to conftest.py files and plugins, as pytest-recording offers
``pytest_recording_configure``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
import pytest

if TYPE_CHECKING:
    from castore._storage.store import Store

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_castore_configure(config: pytest.Config, store: Store) -> None:
    """Called once per session, when castore first opens the session's store, before any
    recorder uses it: set the store up for the suite (an integration, a record of its own,
    a check). Recorder defaults belong in the ``castore_config`` fixture instead."""
