"""Import castore's own modules past pytest's assertion rewriter.

pytest rewrites the asserts of every module in a plugin's distribution, so each castore
module a session imports loads through its import hook, which checks the source's hash
and reads the rewritten bytecode in Python: castore's import took 165 ms in a pytest
session against 84 ms outside one, on every run (and a fresh environment first rewrites
all of castore, about 2 s of CPU). castore's asserts are not test assertions, so its
modules load with Python's standard finder instead, as they would outside pytest.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Final

#: The module of pytest's hook (``AssertionRewritingHook``) on ``sys.meta_path``.
REWRITER_MODULE: Final = "_pytest.assertion.rewrite"
#: Held while the hook is off: two threads importing castore's lazily loaded names at
#: once must not both take the hook off (the second would find it gone) or put it back
#: twice. Reentrant, since an import inside may import more.
_SWITCH: Final = threading.RLock()


@contextlib.contextmanager
def without_assertion_rewriting() -> Iterator[None]:
    """Imports inside skip pytest's rewriting hook; outside pytest, a no-op.

    The hook is taken off ``sys.meta_path`` and put back where it was, so an import
    elsewhere afterwards (a test module, a conftest) is rewritten as before."""
    with _SWITCH:
        hooks = [
            (position, finder)
            for position, finder in enumerate(sys.meta_path)
            if type(finder).__module__ == REWRITER_MODULE
        ]
        for _, finder in hooks:
            sys.meta_path.remove(finder)
        try:
            yield
        finally:
            for position, finder in hooks:
                sys.meta_path.insert(position, finder)
