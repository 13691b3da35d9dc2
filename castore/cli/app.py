"""The ``castore`` group itself: its options, the store it works on, and how failures show.

Every command module registers on :data:`main` and takes what it shares from here: the
:class:`Settings` (which store), the NAMESPACE argument, ``--json``, the confirmation a
destructive command asks for, and the progress bar of long work.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import click

from castore._storage.layout import DEFAULT_ROOT
from castore._storage.store import Store
from castore._upkeep.project import default_store_root
from castore.cli.reports import EXIT_FAULTS, EXIT_STORE_ERROR
from castore.errors import CastoreError

T = TypeVar("T")


class StoreProblem(click.ClickException):
    """A castore error, shown as its message with exit code 3."""

    exit_code = EXIT_STORE_ERROR


@dataclass
class Settings:
    """What the group's options chose, handed to every command (``@click.pass_obj``)."""

    root_option: Path | None

    @property
    def root(self) -> Path:
        return (self.root_option or default_store_root()).absolute()

    def store(self, *, must_exist: bool = True) -> Store:
        root = self.root
        if must_exist and not root.is_dir():
            raise StoreProblem(
                f"no store at {root}: record something first, or pass --root "
                f"(default: castore_root in the project's pytest configuration)"
            )
        try:
            return Store(root)
        except CastoreError as error:
            raise StoreProblem(str(error)) from None


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal and the work is long."""
    if total < 200 or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, length=total, label=label, file=sys.stderr) as bar:
        yield from bar


def fail(message: str, code: int = EXIT_FAULTS) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


class CastoreGroup(click.Group):
    """Runs a subcommand so that no failure reaches the user as a raw traceback.

    A castore error is shown as its message. A file-system error castore did not wrap
    yet, or running out of memory, says what happened and where. Anything else is a bug
    in castore: one line says so and how to see the traceback (``CASTORE_DEBUG=1``).
    All of them exit with code 3.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `castore ls | head`: the reader left, nothing went wrong
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except CastoreError as error:
            raise StoreProblem(str(error)) from None
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise StoreProblem(
                f"the file system refused: {error.strerror or error}{where}. Nothing was "
                "changed by the failed step; fix the cause and run the command again"
            ) from None
        except MemoryError:
            raise StoreProblem(
                "castore ran out of memory; the store may hold a value too large for this "
                "machine (castore stats lists the largest entries)"
            ) from None
        except Exception as error:
            if os.environ.get("CASTORE_DEBUG"):
                raise
            raise StoreProblem(
                f"internal error, a bug in castore ({type(error).__name__}: {error}). Please "
                "report it with the output of the same command run with CASTORE_DEBUG=1"
            ) from None


#: The module of ``castore.cli`` that defines each command. A command's module is imported
#: when the command is looked up, not before: git runs ``castore cat`` once per changed
#: blob and ``castore git merge-index`` once per conflicting index, and neither should pay
#: for every other command's imports (a third of a ``castore cat``'s start).
#: tests/test_cli.py checks this map against what the modules register.
COMMAND_MODULES: Final = {
    "cat": "browse",
    "ls": "browse",
    "show": "browse",
    "stats": "browse",
    "diff": "diff",
    "git": "git",
    "delete": "health",
    "gc": "health",
    "pack": "health",
    "prune": "health",
    "train-dictionary": "health",
    "pull": "remote",
    "push": "remote",
    "remote": "remote",
    "export": "transfer",
    "import": "transfer",
    "verify": "verify",
}


class MainGroup(CastoreGroup):
    """The ``castore`` group: its commands are registered by their modules, imported on
    first lookup (:data:`COMMAND_MODULES`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"castore.cli.{COMMAND_MODULES[cmd_name]}")
        command = super().get_command(ctx, cmd_name)
        if command is not None:  # however its module came to be imported
            accept_root(command)
        return command


@click.group(
    cls=MainGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok; 1 faults or conflicts found; 2 usage error; 3 store error.",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="CASTORE_ROOT",
    help="The store directory. Default: castore_root from the project's pytest "
    f"configuration, else {DEFAULT_ROOT}. Env: CASTORE_ROOT.",
)
@click.version_option(package_name="castore", prog_name="castore")  # read when asked
@click.pass_context
def main(context: click.Context, root: Path | None) -> None:
    """Inspect and maintain a castore store of recorded responses."""
    context.obj = Settings(root)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def namespace_name(value: str) -> str:
    """A namespace, or the test file whose namespace it is: ``tests/test_x.py`` (or
    ``./tests/test_x.py``, or a Windows path) means ``tests/test_x``, as the pytest
    plugin names a module's namespace."""
    text = value.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.removesuffix(".py")


def namespace_argument(
    _context: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    """The click callback of every NAMESPACE argument: see :func:`namespace_name`."""
    return None if value is None else namespace_name(value)


def existing_namespace(store: Store, namespace: str) -> None:
    """Fail with the same message everywhere when ``namespace`` has no index."""
    if namespace not in store.namespaces():
        fail(f"no namespace {namespace!r} in {store.root} (see `castore ls`)")


def confirm_destructive(yes: bool, question: str) -> None:
    """Ask before deleting recordings; without a terminal, insist on ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(
            "this deletes recordings: pass --yes to confirm (or --dry-run to look first)"
        )
    if not click.confirm(question, default=False):
        fail("nothing changed", code=0)


def _set_root(context: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        context.ensure_object(Settings).root_option = value


def accept_root(command: click.Command) -> None:
    """``--root`` works after the subcommand too (``castore stats --root DIR``), as before
    it: the group has already made the settings when a subcommand's options are read.
    Applied to a command (a group's commands, for a group) as it is looked up; a command
    that has it is skipped."""
    if isinstance(command, click.Group):
        for inner in command.commands.values():
            accept_root(inner)
        return
    if not any("--root" in param.opts for param in command.params):
        command.params.append(
            click.Option(
                ["--root"],
                type=click.Path(path_type=Path, file_okay=False),
                expose_value=False,
                callback=_set_root,
                help="The store directory (as `castore --root DIR …`).",
            )
        )
