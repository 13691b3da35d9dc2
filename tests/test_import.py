"""castore import / export: the seeds' fixture files, castore exports, VCR.py cassettes."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from campaign import FULL
from conftest import cli, quick_store
from vcr.serializers import jsonserializer, yamlserializer

from castore import Recorder, Store
from castore._upkeep.importers import vcr_request_key

# The shared corpus sits beside the repository; CASTORE_CORPUS points elsewhere.
CORPUS = (
    Path(
        os.environ.get("CASTORE_CORPUS")
        or Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    / "crewai"
)
#: At CI size the crewAI import test takes every n-th cassette (about 100 of 597).
CREWAI_STRIDE = 6
LONG_PROMPT = "Write a Python function that finds the index of an element in a list. " * 3


def seeds_fixture_file(path: Path) -> None:
    """A fixture file exactly as the seeds' ResponseRecorder._save_fixtures writes it."""
    long_key = f"translate_{LONG_PROMPT}"
    hashed = "hash_" + hashlib.sha256(long_key.encode()).hexdigest()[:16]
    responses = {
        "test_find_index": {
            "response": {"signature": {"name": "find_index"}, "tokens": [1, 2]},
            "original_key": "test_find_index",
            "metadata": {"test": "translation", "prompt": "find index"},
        },
        hashed: {
            "response": "a long-prompt answer",
            "original_key": long_key,
            "metadata": {},
        },
    }
    path.write_text(json.dumps(responses, indent=2, sort_keys=True))


def test_a_seeds_fixture_file_imports_under_the_keys_tests_pass(tmp_path: Path) -> None:
    fixture = tmp_path / "tests" / "fixtures" / "ir_responses.json"
    fixture.parent.mkdir(parents=True)
    seeds_fixture_file(fixture)

    result = cli("--root", str(tmp_path / "store"), "import", str(fixture))

    assert result.returncode == 0, result.stderr
    assert "seeds" in result.stdout and "-> ir_responses: 2" in result.stdout
    replay = Recorder(tmp_path / "store", "ir_responses", mode="none")
    answer = replay.get_or_record_sync("test_find_index", lambda: pytest.fail("called"))
    assert answer == {"signature": {"name": "find_index"}, "tokens": [1, 2]}
    long = replay.get_or_record_sync(f"translate_{LONG_PROMPT}", lambda: pytest.fail("called"))
    assert long == "a long-prompt answer"
    entry = Store(tmp_path / "store").entry("ir_responses", "test_find_index")
    assert entry is not None
    assert entry.metadata == {"test": "translation", "prompt": "find index"}


def test_export_then_import_gives_back_the_same_blobs_and_metadata(tmp_path: Path) -> None:
    source = Store(tmp_path / "source")
    source.put(
        "tests/test_x",
        "typed",
        {
            "raw": b"\xff\x00",
            "text": b"utf-8 bytes",
            "set": {3, 1},
            "big": 2**90,
            "nan": float("inf"),
        },
        metadata={"prompt": "p"},
        duration=12.5,
        schema="3",
    )
    source.put("tests/test_x", "stream", ["a", "b"], stream="async")
    exported = tmp_path / "export.json"

    assert (
        cli("--root", str(source.root), "export", "tests/test_x", "-o", str(exported)).returncode
        == 0
    )
    assert cli("--root", str(tmp_path / "copy"), "import", str(exported)).returncode == 0

    copy = Store(tmp_path / "copy")
    assert copy.namespaces() == ["tests/test_x"]
    for key, entry in source.entries("tests/test_x").items():
        imported = copy.entry("tests/test_x", key)
        assert imported == entry  # same blob digest, size, time, duration, schema, metadata
    document = json.loads(exported.read_text())
    assert document["typed"]["response"]["raw"] == {"$base64": "/wA="}
    assert document["typed"]["metadata"] == {"prompt": "p"}


def test_a_file_that_is_not_a_recording_is_refused_when_named_and_skipped_in_a_walk(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "package.json").write_text('{"name": "web", "version": "1.0.0"}')
    seeds_fixture_file(folder / "modal_responses.json")

    named = cli("--root", str(tmp_path / "store"), "import", str(folder / "package.json"))
    assert named.returncode == 3
    assert "package.json" in named.stderr and "neither a VCR.py cassette" in named.stderr
    assert not (tmp_path / "store").exists()

    walked = cli("--root", str(tmp_path / "store"), "import", str(folder))
    assert walked.returncode == 0, walked.stderr
    assert "skipped" in walked.stdout and "package.json" in walked.stdout
    assert Store(tmp_path / "store").namespaces() == ["modal_responses"]


def test_a_json_cassette_imports_too(tmp_path: Path) -> None:
    cassette = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "GET",
                    "uri": "https://example.com/a",
                    "body": None,
                    "headers": {},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {},
                    "body": {"string": "hi"},
                },
            }
        ],
    }
    path = tmp_path / "cassettes" / "test_it.json"
    path.parent.mkdir()
    path.write_text(jsonserializer.serialize(cassette))

    result = cli("--root", str(tmp_path / "store"), "import", str(tmp_path / "cassettes"))

    assert result.returncode == 0, result.stderr
    store = Store(tmp_path / "store")
    assert store.namespaces() == ["test_it"]
    (key,) = store.entries("test_it")
    assert store.get("test_it", key) == cassette["interactions"][0]["response"]


@pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"the crewAI corpus is not at {CORPUS}; set CASTORE_CORPUS to the corpus directory",
)
def test_importing_the_crewai_cassettes_loses_no_interaction_and_replays_each_exactly(
    tmp_path: Path,
) -> None:
    """Every crewAI cassette under ``CASTORE_CAMPAIGN=full``; at CI size every
    :data:`CREWAI_STRIDE`-th, copied with its folders (their paths are the namespaces)."""
    every = sorted(CORPUS.rglob("*.yaml"))
    cassettes = every if FULL else every[::CREWAI_STRIDE]
    source = CORPUS if FULL else tmp_path / "crewai"
    if not FULL:
        for cassette in cassettes:
            copy = source / cassette.relative_to(CORPUS)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(cassette.read_bytes())
    # Compression is not the point here: the store asks for zstd's quick level, not 19.
    quick_store(tmp_path / "store")
    result = cli("--root", str(tmp_path / "store"), "import", str(source), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    store = Store(tmp_path / "store")
    expected_interactions = 0
    expected_repeats = 0
    for cassette in cassettes:
        # vcrpy's own loader is the oracle for what each cassette holds.
        interactions = yamlserializer.deserialize(cassette.read_text())["interactions"]
        expected_interactions += len(interactions)
        namespace = cassette.relative_to(CORPUS).with_suffix("").as_posix()
        entries = store.entries(namespace)
        assert len(entries) == len(interactions), cassette
        seen: Counter[str] = Counter()
        for interaction in interactions:
            key = vcr_request_key(interaction["request"])
            seen[key] += 1
            stored = key if seen[key] == 1 else f"{key}#{seen[key]}"
            # Repeats keep their order: the n-th identical request gets the n-th response.
            assert store.get(namespace, stored) == interaction["response"], (cassette, stored)
        expected_repeats += sum(count - 1 for count in seen.values())

    assert len(report["files"]) == len(cassettes)
    assert report["entries"] == expected_interactions
    assert sum(item["repeats"] for item in report["files"]) == expected_repeats
    assert expected_repeats > 0  # the sample holds repeated requests too
    if FULL:
        assert (len(cassettes), expected_interactions) == (597, 1549)
        assert expected_repeats >= 206
    assert cli("--root", str(store.root), "verify").returncode == 0
