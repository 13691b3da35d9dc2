"""The benchmark's four suites, built from a small VCR.py corpus written here, each replay
through a real pytest run: what `python -m bench` times must be a suite that passes.

Nothing here is timed (speed is bench/'s job); this guards that the benchmark still builds
and replays from a fresh checkout, without the shared corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.serializers import yamlserializer

from bench import corpus, measure, suites
from castore import Store

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


@pytest.fixture
def small_corpus(tmp_path: Path) -> list[corpus.Cassette]:
    """Four cassettes of three calls; the last call repeats a request with a new answer,
    as the crewAI cassettes do, so its key gets the importer's ``#2``."""
    folder = tmp_path / "corpus" / "demo" / "tests" / "cassettes"
    folder.mkdir(parents=True)
    for model in MODELS:
        calls = [
            interaction(model, 1, "first answer. "),
            interaction(model, 2, "second answer. "),
            interaction(model, 1, "a different first answer. "),
        ]
        document = {"interactions": calls, "version": 1}
        (folder / f"test_{model}.yaml").write_text(yamlserializer.serialize(document))
    return corpus.load(tmp_path / "corpus", subset="demo")


def test_the_four_suites_replay_the_same_scaled_corpus(
    small_corpus: list[corpus.Cassette], tmp_path: Path
) -> None:
    scaled = corpus.scale(small_corpus, 2, duplicates=0.0)
    assert len(scaled) == 8
    built = suites.build(scaled, tmp_path / "work", log=lambda _: None)

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
    small_corpus: list[corpus.Cassette], tmp_path: Path
) -> None:
    built = suites.build(corpus.scale(small_corpus, 2, 0.0), tmp_path / "work", log=print)
    store, namespace = Store(built.store), f"tests/{built.modules[0]}"
    store.delete(namespace, next(iter(store.entries(namespace))))

    with pytest.raises(RuntimeError, match="pytest failed"):
        measure.run_pytest(built.suite("castore"))
