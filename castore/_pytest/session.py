"""One pytest session's castore lifecycle: the store, the recorders, the run, the verdict.

The session is a pytest plugin object. It hands out recorders (fixtures call
:meth:`CastoreSession.recorder`), follows which tests ran and how they ended, and at the
end has the run judged (``judging``) and the verdict saved. The decisions live elsewhere:
the mode and the store's place in ``settings``, the accounting in ``listener``, the
verdict in ``judging``. Under pytest-xdist each worker sends its usage to the controller
through ``workeroutput``; only the controller judges, writes ``last-run.json`` and prints
the report, like pytest's cacheprovider and syrupy do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from castore._pytest import judging
from castore._pytest.listener import SessionListener
from castore._pytest.marker_fixtures import closest_marker
from castore._pytest.plain_imports import without_assertion_rewriting
from castore._pytest.settings import decide_mode, module_namespace, resolve_root
from castore._pytest.storage_settings import storage_settings
from castore._pytest.usage import Usage
from castore._recording.modes import Mode
from castore._recording.recorder import Recorder
from castore._storage.last_run import Judgement, save_judgements
from castore._storage.layout import STATE_DIR
from castore._storage.store import Store, internals
from castore._storage.value_limit import max_value_bytes
from castore.errors import CastoreError, StoreError

WORKEROUTPUT_KEY: Final = "castore"
#: The user property of a call's report that says how many keys the test recorded.
RECORDED_PROPERTY: Final = "castore_recorded"
#: ``castore`` marker options that the session reads, not the recorders.
SESSION_OPTIONS: Final = ("allow_hosts", "allow_misses")


class CastoreSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = resolve_root(
            config.getoption("castore_root"),
            config.invocation_params.dir,
            config.getini("castore_root"),
            config.inipath.parent if config.inipath else None,
            config.rootpath,
        )
        self.listener = SessionListener(config.getoption("castore_root"))
        self.is_worker = hasattr(config, "workerinput")
        self.collected: set[str] = set()
        self.clean: dict[str, bool] = {}
        self.judged: dict[str, Judgement] = {}
        self.not_saved: str | None = None
        """Why this run's unused-recording verdicts could not be saved, if they could not."""
        self.whole_suite = False
        self._store: Store | None = None
        self._namespaces: dict[Path, str] = {}  # module path -> its namespace
        self._modes: dict[str | None, Mode] = {}  # marker mode -> mode for this run
        #: ``castore_volatile``: the answer parts that change on every call, beyond the
        #: defaults, for every recorder the session makes.
        self._volatile_patterns: list[str] = list(config.getini("castore_volatile"))
        #: Namespaces whose LFS objects this session has fetched (or found present); None
        #: until collection decides whether lazy fetch runs at all.
        self._fetched_for: set[str] | None = None
        self.storage = storage_settings(config)
        self.packed = ""
        """What automatic packing did after this session recorded (a report line)."""
        self.current_item: pytest.Item | None = None
        """The test running now (the network guard asks, when something connects)."""
        #: Called as each test starts, before its fixtures (the guard's gRPC check).
        self.before_each_test: list[Callable[[], None]] = []

    @property
    def usage(self) -> Usage:
        return self.listener.usage

    @property
    def store(self) -> Store:
        """The session's store, opened (and handed to ``pytest_castore_configure``) once."""
        if self._store is None:
            limit = max_value_bytes(self.storage.max_value_bytes)
            self._store = Store(self.root, max_value_bytes=limit)
            self.config.hook.pytest_castore_configure(config=self.config, store=self._store)
        return self._store

    def mode_for(self, marker_mode: str | None) -> Mode:
        """The mode for a test whose marker says ``marker_mode``; one decision per run."""
        mode = self._modes.get(marker_mode)
        if mode is None:
            mode = self._modes[marker_mode] = decide_mode(
                option=self.config.getoption("castore_mode"),
                record_fixtures=os.environ.get("RECORD_FIXTURES"),
                marker_mode=marker_mode,
                ini_mode=self.config.getini("castore_mode"),
                ci=os.environ.get("CI"),
            )
        return mode

    def recorder(
        self,
        request: pytest.FixtureRequest,
        namespace: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Recorder:
        """A recorder for the requesting test: ``defaults`` (the ``castore_config`` fixture),
        then the ``castore`` marker's options, then ``options``."""
        marker = closest_marker(request.node, "castore")
        # ``options`` cannot hold a namespace (it is this method's own argument).
        settings = {**(defaults or {}), **(marker.kwargs if marker else {}), **options}
        named = settings.pop("namespace", None)
        if namespace is None:
            namespace = named
        if namespace is None:
            if request.scope == "session":
                raise TypeError(
                    "a session-scoped recorder has no test module to name its namespace "
                    "after: pass one, session_recorder_factory('shared/llm')"
                )
            namespace = self._module_namespace(request.path)
        if "volatile" not in settings and self._volatile_patterns:
            settings["volatile"] = self._volatile_patterns
        for session_only in SESSION_OPTIONS:  # the marker's options for the session, not recorders
            settings.pop(session_only, None)
        asked = settings.pop("mode", None)
        mode = self.mode_for(asked)
        if asked is not None and mode is Mode.NONE and Mode.parse(asked).records:
            # CI replays: say so where the miss is reported, not only in the report.
            nodeid = self.listener.current_nodeid or ""
            self.listener.ci_ignored[nodeid] = f"castore(mode={Mode.parse(asked).value!r})"
            self.usage.ci_ignored += 1
        if self._fetched_for is not None and namespace not in self._fetched_for:
            self._fetch_lfs([namespace])  # chosen at run time (recorder_factory("x"))
        return Recorder(self.store, namespace, mode=mode, listener=self.listener, **settings)

    def _module_namespace(self, path: Path) -> str:
        found = self._namespaces.get(path)
        if found is None:
            found = self._namespaces[path] = module_namespace(path, self.config.rootpath)
        return found

    # --- following the run -----------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Under ``-v``, each key recorded gets a line as it is recorded."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.config.get_verbosity() <= 0 or self.is_worker:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")

        def progress(line: str) -> None:
            # A recording happens while the test runs, its output captured: the line
            # goes to the terminal past the capture, as pytest's live logging does.
            paused = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
            with paused:
                reporter.write_line(line)

        self.listener.progress = progress

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        self.current_item = item
        self.listener.current_nodeid = item.nodeid
        for prepare in self.before_each_test:
            prepare()
        try:
            return (yield)
        finally:
            self.current_item = None
            self.listener.current_nodeid = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected.update(item.nodeid for item in session.items)
        if self.config.option.collectonly:
            return  # nothing will be replayed: fetch nothing, read no index
        if session.items and self.config.getini("castore_lfs_fetch") and self.root.is_dir():
            self._fetched_for = set()
            self._fetch_lfs(self._namespaces_of(session.items))

    def upkeep_lines(self) -> list[str]:
        """What automatic packing did, and what ``castore gc`` could now collect."""
        return [line for line in (self.packed, self.collectable()) if line]

    def _pack_if_due(self) -> None:
        """Automatic packing after a session that recorded (as ``git gc --auto``): the
        loose blobs go into packs once they pass the ini's threshold."""
        settings = self.storage
        if not self.usage.recorded or not settings.auto_pack or not self.root.is_dir():
            return
        with without_assertion_rewriting():
            from castore._upkeep.packing import pack_if_due  # noqa: PLC0415 - recording only

        try:
            report = pack_if_due(
                self.store,
                after_blobs=settings.pack_after_blobs,
                after_bytes=settings.pack_after_bytes,
            )
        except CastoreError as error:  # the recordings are kept loose; say why
            self.packed = f"automatic packing failed, the new recordings stay loose: {error}"
            return
        if report is not None and report.written:
            trained = f", trained zstd dictionary {report.dictionary}" if report.dictionary else ""
            self.packed = (
                f"packed {report.blobs_packed:,} blobs into {len(report.written)} pack(s) "
                f"({report.pack_bytes / 1e6:.1f} MB){trained}: castore_auto_pack; commit the "
                "store's packs/*.idx with the indexes"
            )

    def collectable(self) -> str:
        """A line saying what ``castore gc`` can now collect, after a run that recorded
        (re-recording leaves the old blob behind), or "" when there is nothing."""
        if not self.usage.recorded or not self.root.is_dir():
            return ""
        with without_assertion_rewriting():
            from castore._storage.references import unreferenced_loose_blobs  # noqa: PLC0415

        try:
            core = internals(self.store)
            count, size = unreferenced_loose_blobs(core.indexes, core.config.current, core.blobs)
        except CastoreError:
            return ""
        if not count:
            return ""
        return (
            f"{count} blob(s) ({size / 1024:.1f} KiB) are no longer referenced, left by "
            "re-recording or deleting: `castore gc` removes them"
        )

    def _namespaces_of(self, items: list[pytest.Item]) -> list[str]:
        """The namespaces the collected tests replay from, as far as collection can tell:
        their modules' and their ``castore`` markers' (``namespace=``)."""
        namespaces = set()
        for item in items:
            marker = closest_marker(item, "castore")
            named = marker.kwargs.get("namespace") if marker else None
            namespaces.add(named or self._module_namespace(item.path))
        return sorted(namespaces)

    def _fetch_lfs(self, namespaces: list[str]) -> None:
        """One lazy LFS fetch for what ``namespaces`` need: all of the collected tests' at
        collection, then one per namespace a test chooses at run time. Under xdist the
        store lock makes the first worker fetch and the others find the files there."""
        if self._fetched_for is None:
            return
        self._fetched_for.update(namespaces)
        try:
            reports = internals(self.store).residency.warm_up(namespaces)
        except CastoreError as error:  # a broken store: the tests' replays report it
            self.usage.fetch_problems.append(f"lazy fetch skipped: {error}")
            return
        for fetched in reports:
            if fetched.problem:
                self.usage.fetch_problems.append(fetched.describe_problem())
            if fetched.objects:
                self.usage.fetched.append(
                    (fetched.objects, fetched.bytes, fetched.seconds, fetched.source)
                )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A phase whose code caught a miss fails anyway (``swallowed``); the call's report
        carries how many keys the test recorded (shown as ``R``, and sent by xdist)."""
        report = yield
        misses = self.listener.take_misses(item.nodeid)
        if misses and not _allows_misses(item):
            with without_assertion_rewriting():
                from castore._pytest import swallowed  # noqa: PLC0415 - a run that missed

            swallowed.fail_report(report, misses)
        if report.when == "call":
            recorded = self.listener.recorded_by.pop(item.nodeid, 0)
            if recorded:
                report.user_properties.append((RECORDED_PROPERTY, recorded))
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        """A test that recorded shows ``R`` (``RECORDED`` with ``-v``): a recording run's
        progress, as the keys (and their 30-second calls) go by."""
        if report.when != "call" or not report.passed:
            return None
        recorded = dict(report.user_properties).get(RECORDED_PROPERTY)
        if not recorded:
            return None
        return "passed", "R", (f"RECORDED {recorded}", {"green": True})

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
        self._pack_if_due()
        self.whole_suite = self._ran_whole_suite(exitstatus)
        self.judged = self._judge()
        if self.judged or self.usage.used:
            try:
                save_judgements(self.root / STATE_DIR, self.judged, self.usage.used)
            except StoreError as error:  # a read-only store or a full disk: replay still ran
                self.not_saved = str(error)

    # --- gathering the facts for judging ---------------------------------------------

    def _ran_whole_suite(self, exitstatus: int) -> bool:
        config = self.config
        selected = config.args_source is not pytest.Config.ArgsSource.ARGS or (
            judging.selected_whole_suite(
                config.args,
                config.invocation_params.dir,
                config.rootpath,
                config.getini("testpaths"),
            )
        )
        return judging.ran_whole_suite(
            exitstatus=exitstatus,
            collected=self.collected,
            clean=self.clean,
            deselected=self.usage.deselected,
            whole_suite_selected=selected,
        )

    def _judge(self) -> dict[str, Judgement]:
        narrowed = judging.narrowed_modules(
            self.config.args, self.config.invocation_params.dir, self.config.rootpath
        )
        spoiled = narrowed | {judging.module_of(nodeid) for nodeid in self.usage.deselected}
        return judging.judge(
            tests=self.usage.tests,
            used=self.usage.used,
            complete=judging.complete_modules(self.collected, self.clean, spoiled),
            whole_suite=self.whole_suite,
            judged_at=self.listener.fresh_since,
            keys_of=self._keys_of,
        )

    def _keys_of(self, namespace: str) -> Iterable[str]:
        """Opens the store only if some namespace is judged."""
        return self.store.entries(namespace)


def _allows_misses(item: pytest.Item) -> bool:
    marker = closest_marker(item, "castore")
    return bool(marker and marker.kwargs.get("allow_misses"))
