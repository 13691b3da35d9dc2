"""castore: record expensive API responses once, replay them in every test run.

The public API is what this module exports; everything in ``castore._*`` is private.
"""

from castore._index import Entry
from castore._keys import request_key, stored_key
from castore._store import Store

__all__ = ["Entry", "Store", "request_key", "stored_key"]
