"""zstd dictionaries: trained by explicit command, stored as blobs, readable forever."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import zstandard
from conftest import cli

from castore import Store
from castore._storage.store import internals
from castore._upkeep.retraining import Training, train_dictionary
from castore.errors import CorruptBlobError, IndexFormatError, TrainingError


def response(number: int) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{number:06d}",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Answer number {number}. " * 20},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100 + number, "completion_tokens": 300},
    }


def frame_dictionary(store: Store, blob: str) -> int:
    return int(
        zstandard.get_frame_parameters(internals(store).blobs.location(blob).read_bytes()).dict_id
    )


@pytest.fixture(scope="module")
def similar_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 similar responses, recorded once per module and never changed: each test gets
    a copy (:func:`similar`; 0.07 s of CPU, where recording costs 0.28 s)."""
    store = Store(tmp_path_factory.mktemp("similar") / "store")
    with store.batch():
        for number in range(200):
            store.put(f"tests/test_{number % 7}", f"key-{number}", response(number))
    return store.root


@pytest.fixture(scope="module")
def trained_store(
    tmp_path_factory: pytest.TempPathFactory, similar_store: Path
) -> tuple[Path, Training]:
    """:func:`similar_store` after ``train_dictionary(size=16384)``, once per module and
    never changed, with what the training reported."""
    root = shutil.copytree(similar_store, tmp_path_factory.mktemp("trained") / "store")
    return root, train_dictionary(Store(root), size=16384)


@pytest.fixture
def similar(tmp_path: Path, similar_store: Path) -> Store:
    """This test's own copy of the 200 similar responses, no dictionary yet."""
    return Store(shutil.copytree(similar_store, tmp_path / "store"))


@pytest.fixture
def trained(tmp_path: Path, trained_store: tuple[Path, Training]) -> tuple[Store, Training]:
    """This test's own copy of the trained store, and the training that made it."""
    root, training = trained_store
    return Store(shutil.copytree(root, tmp_path / "store")), training


def empty_twin(store: Store, dictionary_blob: str, twin: Path) -> Path:
    """A store with ``store``'s settings and dictionary but no values: another clone."""
    (twin / "blobs").mkdir(parents=True)
    shutil.copy(store.root / "castore.json", twin / "castore.json")
    dictionary = internals(store).blobs.location(dictionary_blob)
    (twin / dictionary.relative_to(store.root)).parent.mkdir(parents=True)
    shutil.copy(dictionary, twin / dictionary.relative_to(store.root))
    return twin


def test_training_recompresses_every_blob_with_a_dictionary_kept_as_a_blob(similar: Store) -> None:
    names_before = sorted(blob.digest for blob in similar.blobs())
    bytes_before = sum(blob.size for blob in similar.blobs())

    result = cli("--root", str(similar.root), "train-dictionary", "--size", "16384", "--json")

    assert result.returncode == 0, result.stderr
    training = json.loads(result.stdout)
    store = Store(similar.root)
    config = json.loads((similar.root / "castore.json").read_text())
    dictionary_id = training["dictionary_id"]
    assert config["compression"]["dictionary"] == dictionary_id
    assert config["dictionaries"] == {str(dictionary_id): training["dictionary_blob"]}
    assert isinstance(store.read_blob(training["dictionary_blob"]), bytes)
    values = [blob.digest for blob in store.blobs() if blob.digest != training["dictionary_blob"]]
    assert sorted(values) == names_before  # names are digests of the values: unchanged
    assert all(frame_dictionary(store, blob) == dictionary_id for blob in values)
    assert training["bytes_after"] < bytes_before / 2
    for number in (0, 99, 199):
        assert store.get(f"tests/test_{number % 7}", f"key-{number}") == response(number)
    assert cli("--root", str(similar.root), "verify").returncode == 0
    assert cli("--root", str(similar.root), "gc", "--dry-run").stdout.startswith(
        "would remove 0 unreferenced blob(s)"
    )


def test_new_recordings_use_the_active_dictionary_deterministically(
    similar: Store, tmp_path: Path
) -> None:
    training = train_dictionary(similar, size=16384)
    twin = empty_twin(similar, training.dictionary_blob, tmp_path / "twin")

    first = Store(similar.root).put("new", "k", response(1000))
    second = Store(twin).put("other", "k2", response(1000))

    assert frame_dictionary(Store(similar.root), first.blob) == training.dictionary_id
    assert (
        internals(Store(similar.root)).blobs.location(first.blob).read_bytes()
        == internals(Store(twin)).blobs.location(second.blob).read_bytes()
    )


def test_recompression_on_every_core_writes_the_bytes_a_single_put_writes(
    similar: Store, tmp_path: Path
) -> None:
    training = train_dictionary(similar, size=16384)
    twin = empty_twin(similar, training.dictionary_blob, tmp_path / "twin")
    retrained = Store(similar.root)

    for number in (0, 57, 199):
        entry = retrained.entry(f"tests/test_{number % 7}", f"key-{number}")
        assert entry is not None
        alone = Store(twin).put("alone", f"k{number}", response(number))
        assert alone.blob == entry.blob
        assert (
            internals(retrained).blobs.location(entry.blob).read_bytes()
            == internals(Store(twin)).blobs.location(alone.blob).read_bytes()
        )


def test_blobs_compressed_with_an_older_dictionary_stay_readable_after_retraining(
    similar: Store, tmp_path: Path
) -> None:
    first = train_dictionary(similar, size=16384)
    entry = Store(similar.root).entry("tests/test_0", "key-0")
    assert entry is not None
    old_copy = tmp_path / "from-another-branch.zst"
    shutil.copy(internals(similar).blobs.location(entry.blob), old_copy)

    second = train_dictionary(Store(similar.root), size=16384)
    assert second.dictionary_id != first.dictionary_id
    shutil.copy(
        old_copy, internals(similar).blobs.location(entry.blob)
    )  # e.g. checked out from an old commit

    store = Store(similar.root)
    assert frame_dictionary(store, entry.blob) == first.dictionary_id
    assert store.get("tests/test_0", "key-0") == response(0)
    assert set(store.config.dictionaries) == {first.dictionary_id, second.dictionary_id}


def test_a_blob_that_needs_an_unlisted_dictionary_is_a_clear_error(
    trained: tuple[Store, Training],
) -> None:
    similar, training = trained
    config = json.loads((similar.root / "castore.json").read_text())
    config["compression"]["dictionary"] = None
    config["dictionaries"] = {}
    (similar.root / "castore.json").write_text(json.dumps(config))

    with pytest.raises(CorruptBlobError, match=f"needs zstd dictionary {training.dictionary_id}"):
        Store(similar.root).get("tests/test_0", "key-0")


@pytest.mark.parametrize(
    "named", ["../../outside-secret/secret", "A" * 64, 7, None, "0" * 63 + "/"]
)
def test_a_dictionary_named_by_anything_but_a_digest_is_refused_unopened(
    trained: tuple[Store, Training], named: object
) -> None:
    """The campaign's case: castore.json named '../../outside-secret/secret' and the store
    opened that path."""
    similar, training = trained
    config = json.loads((similar.root / "castore.json").read_text())
    config["dictionaries"] = {str(training.dictionary_id): named}
    (similar.root / "castore.json").write_text(json.dumps(config))

    with pytest.raises(IndexFormatError, match=f"dictionary {training.dictionary_id}: expected"):
        Store(similar.root).get("tests/test_0", "key-0")


def test_cat_of_a_dictionary_compressed_blob_copied_out_of_the_store(
    trained: tuple[Store, Training], tmp_path: Path
) -> None:
    similar, _ = trained
    entry = Store(similar.root).entry("tests/test_3", "key-3")
    assert entry is not None
    copy = tmp_path / "git-textconv-tempfile"
    shutil.copy(internals(similar).blobs.location(entry.blob), copy)

    result = cli("--root", str(similar.root), "cat", str(copy))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == response(3)


def test_training_needs_enough_values(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put("ns", "only", response(1))
    with pytest.raises(TrainingError, match="at least 16"):
        train_dictionary(store)
