"""castore benchmarks: run with `uv run --group bench python -m bench` (docs/benchmarks.md)."""
