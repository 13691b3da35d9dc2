"""The pytest side: one session's lifecycle, the mode it runs in, judging and the report."""
