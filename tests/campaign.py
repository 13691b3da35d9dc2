"""How big the heavy campaigns run: CI size by default, full size on request.

``CASTORE_CAMPAIGN=full uv run pytest`` runs the fuzzing, kill and concurrent-writer
campaigns at the size docs/reliability.md reports (about 10-15 minutes on 2 cores), and
imports all 597 crewAI cassettes of the shared corpus instead of every sixth; the default
keeps them to a few minutes of the suite.
"""

from __future__ import annotations

import os
from typing import Final

FULL: Final = os.environ.get("CASTORE_CAMPAIGN", "").strip().lower() == "full"


def size(ci: int, full: int) -> int:
    """``full`` under ``CASTORE_CAMPAIGN=full``, else ``ci``."""
    return full if FULL else ci
