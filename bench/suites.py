"""Writing the same recorded suite five ways: castore, VCR.py, the seeds' JSON, raw, memory.

Every suite has one test module per cassette, and every test makes the cassette's calls in
recorded order and checks each status code:

* ``castore``: ``recorder.get_or_record_sync(key, never)`` against a castore store;
* ``vcr``: ``@pytest.mark.vcr`` (pytest-recording) and real ``httpx`` requests answered
  by vcrpy from YAML cassettes (one httpx client per session, as a careful suite shares it);
* ``seeds``: the seeds' recorder, one pretty-printed JSON file per test module loaded
  whole by a function-scoped fixture, as their conftest does;
* ``raw`` (bench.remote only; bench/raw_floor.py): castore's store read with native calls
  only, the least that a verified reader of castore's format does;
* ``floor``: the values already in memory (one msgpack file loaded once per session),
  handed to each test by a function-scoped fixture, as castore's ``recorder`` is, and
  looked up in a dict: what the suite costs with no storage at all.

Each suite loads only its own plugin (``-p no:castore`` / ``-p no:recording``).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from vcr.serializers import yamlserializer

from bench.corpus import Cassette
from bench.raw_floor import write_raw_suite
from castore import Store
from castore._storage.config import StoreConfig
from castore._storage.store import internals

APPROACHES = ("castore", "vcr", "seeds", "floor")
# Plugins installed with castore's dev tools and not with a user's suite are off for every
# approach: hypothesis's alone imports all of hypothesis at each session's end (0.37 s),
# which would hide the cost being measured.
COMMON_OPTIONS = "-p no:cacheprovider -p no:xdist -p no:asyncio -p no:hypothesispytest"
PLUGINS_OFF = {
    "castore": "-p no:recording",
    "vcr": "-p no:castore",
    "seeds": "-p no:castore -p no:recording",
    "floor": "-p no:castore -p no:recording",
    "raw": "-p no:castore -p no:recording",
}


@dataclass
class Suites:
    work: Path
    cassettes: list[Cassette]
    modules: list[str]

    def suite(self, approach: str) -> Path:
        return self.work / approach

    @property
    def store(self) -> Path:
        return self.work / "castore" / "store"

    def cassette(self, number: int) -> Path:
        """Test module ``number``'s VCR.py cassette, where pytest-recording looks for it."""
        return self.fixtures("vcr") / self.modules[number] / "test_replay.yaml"

    def seeds_file(self, number: int) -> Path:
        """Test module ``number``'s JSON fixture file, as the seeds name it."""
        return self.fixtures("seeds") / f"{self.modules[number]}.json"

    def fixtures(self, approach: str) -> Path:
        """The directory holding an approach's recorded data (what would be committed)."""
        return {
            "castore": self.store,
            "vcr": self.work / "vcr" / "tests" / "cassettes",
            "seeds": self.work / "seeds" / "fixtures",
            "floor": self.work / "floor" / "values",
            "raw": self.work / "raw" / "values",
        }[approach]


def module_name(number: int) -> str:
    return f"test_{number:05d}"


def pytest_ini(approach: str, extra: str = "") -> str:
    return (
        f"[pytest]\ntestpaths = tests\naddopts = {COMMON_OPTIONS} {PLUGINS_OFF[approach]}\n{extra}"
    )


def _suite_folder(suites: Suites, approach: str, conftest: str) -> Path:
    """An approach's suite folder with its pytest.ini, conftest and fixtures folder."""
    folder = suites.suite(approach)
    (folder / "tests").mkdir(parents=True)
    suites.fixtures(approach).mkdir(parents=True)
    (folder / "pytest.ini").write_text(pytest_ini(approach))
    (folder / "tests" / "conftest.py").write_text(conftest)
    return folder


def _body_bytes(request: dict[str, Any]) -> bytes | None:
    body = request.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return None
    return body if isinstance(body, bytes) else str(body).encode()


def _status(interaction: Any) -> int:
    return int(interaction.response["status"]["code"])


def calls_of(cassette: Cassette) -> list[tuple[str, int]]:
    """A test module's calls: each key and the status code its test checks."""
    return [(item.key, _status(item)) for item in cassette.interactions]


# --- castore -------------------------------------------------------------------------


def write_castore(suites: Suites, *, level: int, train: bool, pack: bool = True) -> None:
    folder = suites.suite("castore")
    (folder / "tests").mkdir(parents=True)
    (folder / "pytest.ini").write_text(pytest_ini("castore", "castore_root = store\n"))
    store = Store(suites.store)
    # Fast first compression; train-dictionary recompresses everything at ``level``.
    internals(store).writer.save_config(StoreConfig(level=1 if train else level))
    store = Store(suites.store)
    rng = random.Random(11)
    with store.batch():
        for number, cassette in enumerate(suites.cassettes):
            module = module_name(number)
            for item in cassette.interactions:
                store.put(
                    f"tests/{module}",
                    item.key,
                    item.response,
                    duration=round(rng.uniform(2, 40), 3),
                )
            calls = "\n".join(
                f"    assert get({item.key!r}, never)['status']['code'] == {_status(item)}"
                for item in cassette.interactions
            )
            (folder / "tests" / f"{module}.py").write_text(
                "def never():\n    raise AssertionError('the replay called the API')\n\n\n"
                f"def test_replay(recorder):\n    get = recorder.get_or_record_sync\n{calls}\n"
            )
    if train:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "castore",
                "--root",
                str(suites.store),
                "train-dictionary",
                "--level",
                str(level),
            ],
            check=True,
            capture_output=True,
        )
    if pack:  # the layout castore recommends for large stores (docs/packs.md)
        subprocess.run(
            [sys.executable, "-m", "castore", "--root", str(suites.store), "pack"],
            check=True,
            capture_output=True,
        )


# --- VCR.py --------------------------------------------------------------------------


VCR_CONFTEST = """import httpx
import pytest


@pytest.fixture(scope="session")
def http():
    with httpx.Client() as client:
        yield client
"""


def vcr_document(cassette: Cassette) -> str:
    """A cassette file as vcrpy's YAML serializer writes it."""
    interactions = [
        {"request": item.request, "response": item.response} for item in cassette.interactions
    ]
    return str(yamlserializer.serialize({"interactions": interactions, "version": 1}))


def write_vcr(suites: Suites) -> None:
    folder = _suite_folder(suites, "vcr", VCR_CONFTEST)
    for number, cassette in enumerate(suites.cassettes):
        module = module_name(number)
        path = suites.cassette(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(vcr_document(cassette))
        calls = "\n".join(
            f"    assert http.request({item.request['method']!r}, {item.request['uri']!r}, "
            f"content={_body_bytes(item.request)!r}).status_code == {_status(item)}"
            for item in cassette.interactions
        )
        (folder / "tests" / f"{module}.py").write_text(
            f"import pytest\n\n\n@pytest.mark.vcr\ndef test_replay(http):\n{calls}\n"
        )


# --- the seeds' recorder ---------------------------------------------------------------


SEEDS_CONFTEST = '''import hashlib
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class ResponseRecorder:
    """The seeds' recorder, replay path: the whole JSON file is loaded on creation."""

    def __init__(self, fixture_file):
        self.fixture_file = Path(fixture_file)
        exists = self.fixture_file.exists()
        self.responses = json.loads(self.fixture_file.read_text()) if exists else {}
        self.cache_hits = 0

    def _make_key(self, key):
        if len(key) > 100:
            return "hash_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return key

    def get(self, key):
        entry = self.responses[self._make_key(key)]
        self.cache_hits += 1
        return entry["response"]


@pytest.fixture
def seeds_recorder(request):
    return ResponseRecorder(FIXTURES / f"{request.path.stem}.json")
'''


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def seeds_document(cassette: Cassette, overrides: dict[str, Any] | None = None) -> str:
    """A fixture file exactly as the seeds' ResponseRecorder._save_fixtures writes it."""
    responses = {
        item.key: {
            "response": (overrides or {}).get(item.key, item.response),
            "original_key": item.key,
            "metadata": {},
        }
        for item in cassette.interactions
    }
    return json.dumps(responses, indent=2, sort_keys=True, default=_json_safe)


def write_seeds(suites: Suites) -> None:
    folder = _suite_folder(suites, "seeds", SEEDS_CONFTEST)
    for number, cassette in enumerate(suites.cassettes):
        module = module_name(number)
        suites.seeds_file(number).write_text(seeds_document(cassette))
        calls = "\n".join(
            f"    assert get({item.key!r})['status']['code'] == {_status(item)}"
            for item in cassette.interactions
        )
        (folder / "tests" / f"{module}.py").write_text(
            f"def test_replay(seeds_recorder):\n    get = seeds_recorder.get\n{calls}\n"
        )


# --- the floor: values in memory --------------------------------------------------------


FLOOR_CONFTEST = """from pathlib import Path

import msgpack
import pytest

VALUES = Path(__file__).resolve().parent.parent / "values" / "all.msgpack"


@pytest.fixture(scope="session")
def values():
    return msgpack.unpackb(VALUES.read_bytes(), strict_map_key=False)


@pytest.fixture
def recorded(request, values):
    # The module's values, handed over as castore's and the seeds' recorders are: by a
    # function-scoped fixture that reads the test's module from ``request``.
    return values[request.path.stem]
"""


def write_floor(suites: Suites) -> None:
    folder = _suite_folder(suites, "floor", FLOOR_CONFTEST)
    everything: dict[str, dict[str, Any]] = {}
    for number, cassette in enumerate(suites.cassettes):
        module = module_name(number)
        everything[module] = {item.key: item.response for item in cassette.interactions}
        calls = "\n".join(
            f"    assert get({item.key!r})['status']['code'] == {_status(item)}"
            for item in cassette.interactions
        )
        (folder / "tests" / f"{module}.py").write_text(
            f"def test_replay(recorded):\n    get = recorded.__getitem__\n{calls}\n"
        )
    (suites.fixtures("floor") / "all.msgpack").write_bytes(msgpack.packb(everything))


def write_raw(suites: Suites) -> None:
    """The raw floor (bench/raw_floor.py), reading castore's store: written after it."""
    modules = {module_name(n): calls_of(c) for n, c in enumerate(suites.cassettes)}
    write_raw_suite(suites.suite("raw"), suites.store, modules, pytest_ini("raw"))


def build(cassettes: list[Cassette], work: Path, *, log: Callable[[str], None] = print) -> Suites:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    suites = Suites(work, cassettes, [module_name(n) for n in range(len(cassettes))])
    writers: tuple[tuple[str, Callable[[], None]], ...] = (
        ("castore", lambda: write_castore(suites, level=19, train=True)),
        ("vcr", lambda: write_vcr(suites)),
        ("seeds", lambda: write_seeds(suites)),
        ("floor", lambda: write_floor(suites)),
    )
    for approach, write in writers:
        started = time.perf_counter()
        write()
        log(f"    wrote the {approach} suite in {time.perf_counter() - started:.0f} s")
    return suites
