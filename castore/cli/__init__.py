"""The ``castore`` command: each subcommand is a thin layer over the store and upkeep.

One module per group of commands, each registering on :data:`castore.cli.app.main`:

* ``browse``: ``stats``, ``ls``, ``show``, ``cat``, looking without changing anything;
* ``verify``: ``castore verify``;
* ``health``: ``gc``, ``prune``, ``delete``, ``pack``, ``train-dictionary``;
* ``transfer``: ``import`` and ``export``;
* ``diff``: ``castore diff``;
* ``git``: ``castore git setup`` and the drivers git runs;
* ``remote``: ``castore remote``, ``push``, ``pull`` (and ``gc --remote``'s work).

A command builds a small result object (:class:`castore.cli.reports.Report`) that renders
as text and as ``--json``. A new group is a new module here, named for each of its
commands in :data:`castore.cli.app.COMMAND_MODULES`: a command's module is imported when
the command is looked up, so ``castore cat`` (which git runs once per changed blob)
imports ``browse`` alone.

Exit codes: 0 success; 1 faults found (``verify``), changes (``diff``), a merge conflict
(``git merge-index``) or nothing to show; 2 a usage error; 3 a store that cannot be read
or written (a castore error: the message says what and where).
"""

from castore.cli.app import main

__all__ = ["main"]
