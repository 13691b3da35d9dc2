"""The benchmark's four suites, built from a small VCR.py corpus written here, each replay
through a real pytest run: what `python -m bench` times must be a suite that passes.

Nothing here is timed (speed is bench/'s job); this guards that the benchmark still builds
and replays from a fresh checkout, without the shared corpus.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from castore import Store

if TYPE_CHECKING:  # bench imports VCR.py: only the worker that runs these tests pays
    from bench import corpus, suites

MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-4.1")


def interaction(model: str, question: int, answer: str) -> dict[str, object]:
    body = {"model": model, "messages": [{"role": "user", "content": f"question {question}"}]}
    completion = {
        "id": f"chatcmpl-{model}-{question}-{answer}",
        "object": "chat.completion",
        "created": 1750000000 + question,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer * 40}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 40},
    }
    return {
        "request": {
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": json.dumps(body),
            "headers": {"content-type": ["application/json"]},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {
                "content-type": ["application/json"],
                "date": ["Mon, 01 Jun 2026 00:00:00 GMT"],
                "x-request-id": [f"req_{model}_{question}"],
            },
            "body": {"string": json.dumps(completion)},
        },
    }


def small_corpus(root: Path) -> list[corpus.Cassette]:
    """Four cassettes of three calls; the last call repeats a request with a new answer,
    as the crewAI cassettes do, so its key gets the importer's ``#2``."""
    from vcr.serializers import yamlserializer  # noqa: PLC0415

    from bench import corpus  # noqa: PLC0415

    folder = root / "corpus" / "demo" / "tests" / "cassettes"
    folder.mkdir(parents=True)
    for model in MODELS:
        calls = [
            interaction(model, 1, "first answer. "),
            interaction(model, 2, "second answer. "),
            interaction(model, 1, "a different first answer. "),
        ]
        document = {"interactions": calls, "version": 1}
        (folder / f"test_{model}.yaml").write_text(yamlserializer.serialize(document))
    return corpus.load(root / "corpus", subset="demo")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> suites.Suites:
    """The four suites of the small corpus scaled twice, built once for the module (a
    build trains a dictionary and packs the store, two castore commands). The tests only
    run pytest in them, which adds caches and castore's local state, or copy them."""
    from bench import corpus, suites  # noqa: PLC0415

    root = tmp_path_factory.mktemp("bench")
    scaled = corpus.scale(small_corpus(root), 2, duplicates=0.0)
    return suites.build(scaled, root / "work", log=lambda _: None)


def test_the_four_suites_replay_the_same_scaled_corpus(built: suites.Suites) -> None:
    from bench import measure, suites  # noqa: PLC0415

    assert len(built.cassettes) == 8

    for approach in suites.APPROACHES:  # raises, with pytest's output, if a suite fails
        _, _, peak = measure.run_pytest(built.suite(approach))
        assert peak > 0

    store = Store(built.store)
    entries = {namespace: list(store.entries(namespace)) for namespace in store.namespaces()}
    assert len(entries) == 8
    assert sum(len(keys) for keys in entries.values()) == 24
    assert all(sum(key.endswith("#2") for key in keys) == 1 for keys in entries.values())
    assert store.config.dictionary is not None  # the store the benchmark times is trained
    assert len(list(built.fixtures("vcr").rglob("*.yaml"))) == 8
    assert len(list(built.fixtures("seeds").glob("*.json"))) == 8


def test_a_castore_suite_missing_a_recording_fails_rather_than_passing(
    built: suites.Suites, tmp_path: Path
) -> None:
    from bench import measure  # noqa: PLC0415

    # A copy of the suite as built, without what a run leaves (bytecode, castore's record of
    # its last run, the peak-memory file).
    suite = tmp_path / "castore"
    left_by_a_run = shutil.ignore_patterns("last-run.json", "__pycache__", ".peak-rss")
    shutil.copytree(built.suite("castore"), suite, ignore=left_by_a_run)
    store = Store(suite / built.store.relative_to(built.suite("castore")))
    namespace = f"tests/{built.modules[0]}"
    store.delete(namespace, next(iter(store.entries(namespace))))

    # It fails for the missing recording alone: the other seven modules still replay.
    with pytest.raises(
        RuntimeError, match=r"(?s)pytest failed.*MissingRecordingError.*1 failed, 7 passed"
    ):
        measure.run_pytest(suite)


def test_the_raw_floor_reads_castores_store_and_checks_every_digest(
    built: suites.Suites, tmp_path: Path
) -> None:
    """The raw floor stands for the least a verified reader of castore's format does: it
    must read each value from castore's store itself, and check it against its digest."""
    import msgpack  # noqa: PLC0415

    from bench import measure, raw_floor, suites  # noqa: PLC0415

    store = tmp_path / "store"
    shutil.copytree(built.store, store, ignore=shutil.ignore_patterns(".castore"))
    modules = {built.modules[n]: suites.calls_of(c) for n, c in enumerate(built.cassettes)}
    folder = raw_floor.write_raw_suite(tmp_path / "raw", store, modules, suites.pytest_ini("raw"))
    measure.run_pytest(folder)

    # Another value's frame, whole and valid, where the first module's first value should
    # be: only the digest check can tell.
    table_file = folder / "values" / "frames.msgpack"
    table = msgpack.unpackb(table_file.read_bytes(), strict_map_key=False)
    first = next(iter(Store(store).entries(f"tests/{built.modules[0]}").values())).blob
    last = next(iter(Store(store).entries(f"tests/{built.modules[-1]}").values())).blob
    right = table["blobs"][first]
    table["blobs"][first] = table["blobs"][last]
    table_file.write_bytes(msgpack.packb(table))
    with pytest.raises(RuntimeError, match=r"(?s)does not match its digest.*7 passed, 1 error"):
        measure.run_pytest(folder)

    # The frame itself damaged in castore's pack: zstd's checksum or the digest refuses it.
    table["blobs"][first] = right
    table_file.write_bytes(msgpack.packb(table))
    number, offset, length = right
    pack = Path(table["files"][number])
    assert pack.is_relative_to(store)
    data = bytearray(pack.read_bytes())
    data[offset + length // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    damaged = r"(?s)(ZstdError|does not match its digest).*7 passed, 1 error"
    with pytest.raises(RuntimeError, match=damaged):
        measure.run_pytest(folder)


def test_the_shard_benchmark_counts_frames_cut_from_remote_packs(tmp_path: Path) -> None:
    """A one-module shard fetches a few frames cut from a remote pack: the bytes moved
    must count them, where castore's own layout puts them."""
    from bench.remote import _fetchable_bytes  # noqa: PLC0415
    from castore._storage.blobs.cut import CutFrames  # noqa: PLC0415
    from castore._storage.files.seam import FileKind  # noqa: PLC0415
    from castore._storage.layout import CUT_FRAMES_DIR, STATE_DIR  # noqa: PLC0415

    store = tmp_path / "store"
    (store / "packs").mkdir(parents=True)
    (store / "packs" / f"{'a' * 64}.pack").write_bytes(b"version https://git-lfs pointer")
    assert _fetchable_bytes(tmp_path) == 0  # an LFS pointer holds no content
    cut = CutFrames(store / STATE_DIR / CUT_FRAMES_DIR)
    frame = b"\x28\xb5\x2f\xfd" + bytes(2000)
    cut.files_of("a" * 64).write(FileKind.BLOB, "b" * 64, frame)
    assert _fetchable_bytes(tmp_path) == len(frame)
