"""How large a value castore reads or records: the guard against decompression bombs.

A read holds the frame, the value it decompresses to, and the Python objects msgpack
builds from it; a ``bytes`` value is held twice while it is unpacked. 64 MiB keeps any
single read well under 1 GiB of memory (``castore show`` adds its JSON text), where the
old 512 MiB let a 500 MiB bomb within the cap peak over 1 GiB. LLM responses are a few
KB; a store that records larger values raises the limit, for one process with
``CASTORE_MAX_VALUE_BYTES`` (``castore`` commands, pytest), for a test run with the
``castore_max_value_bytes`` ini option, or in code with ``Store(max_value_bytes=…)``.
"""

from __future__ import annotations

import os
import re
from typing import Final

from castore.errors import StoreError

DEFAULT_MAX_VALUE_BYTES: Final = 64 * 1024 * 1024
VARIABLE: Final = "CASTORE_MAX_VALUE_BYTES"
#: What an error names as the way to raise the limit.
SETTING: Final = (
    f"{VARIABLE} (or the castore_max_value_bytes ini option, or Store(max_value_bytes=))"
)
#: Matched against the lowered text: re.IGNORECASE would import re's case-folding tables,
#: a millisecond of every session (each reads the auto-pack threshold).
_SIZE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|kb|mb|gb)?\s*")
_UNITS: Final = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
}


def parse_size(text: str) -> int:
    """``64MiB``, ``512 KiB``, ``1000000`` as bytes; StoreError for anything else."""
    found = _SIZE.fullmatch(text.lower())
    if found is None:
        raise StoreError(f"{text!r} is not a size such as 64MiB or 1000000")
    return int(float(found.group(1)) * _UNITS[found.group(2) or "b"])


def max_value_bytes(given: int | str | None = None) -> int:
    """The limit in force: ``given`` (an argument or the ini option), else the variable,
    else the default."""
    chosen = given if given not in (None, "") else os.environ.get(VARIABLE, "").strip()
    if chosen in (None, ""):
        return DEFAULT_MAX_VALUE_BYTES
    size = chosen if isinstance(chosen, int) else parse_size(str(chosen))
    if size < 1:
        raise StoreError(f"the value size limit must be positive, not {chosen!r} ({SETTING})")
    return size
