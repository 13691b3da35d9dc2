"""The storage layer: values, frames, blobs, indexes and the store that ties them together.

It imports nothing from castore above itself (``castore.errors`` only); recording, the
pytest plugin and upkeep are built on it. docs/architecture.md draws the layers.
"""
