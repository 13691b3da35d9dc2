"""Blobs: where frames are kept (backends) and the one verified way to read them."""
