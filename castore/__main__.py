"""``python -m castore``: the castore command."""

from castore.cli import main

main()
