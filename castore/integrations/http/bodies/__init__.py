"""Body framings that castore stores decoded, so recordings diff as data and replay with
their original boundaries: AWS event streams (``eventstream``)."""
