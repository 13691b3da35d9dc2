"""One pytest session's castore state: store, modes, usage, and the verdict on unused entries.

The session is a pytest plugin object. It hands out recorders (fixtures call
:meth:`CastoreSession.recorder`), hears every replay and recording through the
``RecordingListener`` protocol, follows which tests ran and how they ended, and at the
end judges which entries no test asked for. Under pytest-xdist each worker sends its
usage to the controller through ``workeroutput``; only the controller judges, writes
``last-run.json`` and prints the report, like pytest's cacheprovider and syrupy do.

Judging is selection-aware: a namespace is judged only when this run used it and every
test that could use it ran and passed. For a module's own namespace that means the whole
module ran (no ``-k``/``-m``/``::`` narrowing in it, no failure or skip); for any other
namespace it means the whole suite ran clean.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Final

import pytest

from castore._index import Entry, now
from castore._modes import Mode
from castore._recorder import Recorder
from castore._store import Store
from castore._usage import Judgement, Usage, save_judgements

DEFAULT_ROOT: Final = "tests/fixtures/castore"
WORKEROUTPUT_KEY: Final = "castore"
_TRUE = frozenset({"1", "true", "yes", "on"})


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def module_namespace(path: Path, rootpath: Path) -> str:
    """``<rootdir>/tests/integration/test_ir.py`` -> ``tests/integration/test_ir``."""
    try:
        return path.relative_to(rootpath).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class CastoreSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = self._resolve_root()
        self.fresh_since = now()
        self.usage = Usage()
        self.is_worker = hasattr(config, "workerinput")
        self.current_nodeid: str | None = None
        self.collected: set[str] = set()
        self.clean: dict[str, bool] = {}
        self.judged: dict[str, Judgement] = {}
        self.whole_suite = False
        self._store: Store | None = None
        self._namespaces: dict[Path, str] = {}  # module path -> its namespace
        self._modes: dict[str | None, Mode] = {}  # marker mode -> mode for this run

    # --- configuration ---------------------------------------------------------------

    def _resolve_root(self) -> Path:
        option: str | None = self.config.getoption("castore_root")
        if option:
            return (self.config.invocation_params.dir / option).resolve()
        ini: str = self.config.getini("castore_root")
        base = self.config.inipath.parent if self.config.inipath else self.config.rootpath
        return (base / ini).resolve() if ini else self.config.rootpath / DEFAULT_ROOT

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.root)
        return self._store

    def mode_for(self, marker_mode: str | None) -> Mode:
        """The mode for a test whose marker says ``marker_mode``; one decision per run."""
        mode = self._modes.get(marker_mode)
        if mode is None:
            mode = self._modes[marker_mode] = self._decide_mode(marker_mode)
        return mode

    def _decide_mode(self, marker_mode: str | None) -> Mode:
        """--castore-mode, then RECORD_FIXTURES=true, then the marker, then the ini option.

        On CI (``CI`` set), a recording mode that comes only from a marker or the ini file
        is ignored: CI replays, and a missing recording fails the build instead of
        silently calling the real API. The command line and RECORD_FIXTURES still rule.
        """
        option = self.config.getoption("castore_mode")
        if option:
            return Mode.parse(option)
        if truthy(os.environ.get("RECORD_FIXTURES")):
            return Mode.ALL
        mode = Mode.parse(marker_mode or self.config.getini("castore_mode") or Mode.NONE)
        if mode.records and truthy(os.environ.get("CI")):
            return Mode.NONE
        return mode

    def recorder(
        self, request: pytest.FixtureRequest, namespace: str | None = None, **options: Any
    ) -> Recorder:
        """A recorder for the requesting test; marker options are defaults for ``options``."""
        marker = request.node.get_closest_marker("castore")
        settings = dict(marker.kwargs) if marker else {}
        if namespace is None:
            namespace = settings.pop("namespace", None) or self._module_namespace(request.path)
        else:
            settings.pop("namespace", None)
        settings.update(options)
        mode = self.mode_for(settings.pop("mode", None))
        return Recorder(self.store, namespace, mode=mode, listener=self, **settings)

    def _module_namespace(self, path: Path) -> str:
        found = self._namespaces.get(path)
        if found is None:
            found = self._namespaces[path] = module_namespace(path, self.config.rootpath)
        return found

    # --- RecordingListener -----------------------------------------------------------

    def replayed(self, recorder: Recorder, key: str, entry: Entry) -> None:
        self.usage.hits += 1
        self.usage.saved_seconds += entry.duration or 0.0
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def recorded(self, recorder: Recorder, key: str, entry: Entry) -> None:
        self.usage.recorded += 1
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def missed(self, recorder: Recorder, key: str, reason: str) -> None:
        self.usage.misses += 1
        self.usage.missing.append((recorder.namespace, key, reason))
        self.usage.note(recorder.namespace, key, self.current_nodeid)

    def how_to_record(self, recorder: Recorder, key: str, mode: Mode) -> str:
        runner = "uv run pytest" if "UV_RUN_RECURSION_DEPTH" in os.environ else "pytest"
        target = shlex.quote(self.current_nodeid or recorder.namespace + ".py")
        root = self.config.getoption("castore_root")
        extra = f" --castore-root={shlex.quote(root)}" if root else ""
        if mode is Mode.ALL:
            return f"RECORD_FIXTURES=true {runner} {target}{extra}"
        return f"{runner} {target} --castore-mode=new_episodes{extra}"

    # --- following the run -----------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        self.current_nodeid = item.nodeid
        try:
            return (yield)
        finally:
            self.current_nodeid = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected.update(item.nodeid for item in session.items)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.usage.deselected.update(item.nodeid for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        ok = report.passed and not hasattr(report, "wasxfail")
        self.clean[report.nodeid] = self.clean.get(report.nodeid, True) and ok

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected.update(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
        if output:
            self.usage.merge(Usage.from_json(output))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            self.config.workeroutput[WORKEROUTPUT_KEY] = self.usage.to_json()  # type: ignore[attr-defined]
            return
        if not self.usage.used and not self.root.exists():
            return  # castore was not used and there is no store: leave no trace
        self.whole_suite = self._ran_whole_suite(exitstatus)
        self.judged = self._judge()
        if self.judged or self.usage.used:
            save_judgements(self.store.state_dir, self.judged, self.usage.used)

    # --- judging ---------------------------------------------------------------------

    def _narrowed_modules(self) -> set[str]:
        """Modules only part of which was selected on the command line (``file::test``)."""
        narrowed = set()
        invocation = self.config.invocation_params.dir
        for arg in self.config.args:
            if "::" in arg:
                path = (invocation / arg.split("::", 1)[0]).resolve()
                narrowed.add(module_namespace(path, self.config.rootpath) + path.suffix)
        return narrowed

    def _complete_modules(self) -> set[str]:
        by_module: dict[str, list[str]] = {}
        for nodeid in self.collected:
            by_module.setdefault(_module_of(nodeid), []).append(nodeid)
        spoiled = self._narrowed_modules() | {_module_of(n) for n in self.usage.deselected}
        return {
            module
            for module, nodeids in by_module.items()
            if module not in spoiled and all(self.clean.get(n, False) for n in nodeids)
        }

    def _ran_whole_suite(self, exitstatus: int) -> bool:
        if exitstatus != 0 or self.usage.deselected or not self.collected:
            return False
        if not all(self.clean.get(nodeid, False) for nodeid in self.collected):
            return False
        if self.config.args_source is not pytest.Config.ArgsSource.ARGS:
            return True
        rootpath = self.config.rootpath.resolve()
        invocation = self.config.invocation_params.dir
        testpaths = {(rootpath / p).resolve() for p in self.config.getini("testpaths")}
        for arg in self.config.args:
            path = (invocation / arg).resolve()
            if "::" in arg or not (path in testpaths or rootpath.is_relative_to(path)):
                return False
        return True

    def _judge(self) -> dict[str, Judgement]:
        """Which namespaces this run may speak for, and their entries no test asked for.

        The indexes as this process read them suffice: an entry another process recorded
        meanwhile is newer than the run, and prune never drops entries newer than the run
        that judged them."""
        complete = self._complete_modules()
        judged = {}
        # Only namespaces this run touched: one it never touched may belong to another
        # suite sharing the store (another testpath, a script), so silence is not proof.
        for namespace in sorted(self.usage.tests):
            modules = {_module_of(nodeid) for nodeid in self.usage.tests.get(namespace, ())}
            own_module = modules and all(
                module.removesuffix(".py") == namespace and module in complete for module in modules
            )
            if self.whole_suite or own_module:
                unused = set(self.store.entries(namespace)) - self.usage.used.get(namespace, set())
                judged[namespace] = Judgement(self.fresh_since, frozenset(unused))
        return judged
