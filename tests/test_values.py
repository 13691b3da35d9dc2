"""Which values a store keeps, and exactly how they come back (docs/concepts.md, "Values")."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from castore import Store
from castore.errors import UnencodableValueError

UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))

EXACT_ROUND_TRIPS = {
    "dict": {"model": "gpt-4o", "choices": [{"index": 0}], "usage": {"total": 12}},
    "empty dict": {},
    "list": [1, "two", 3.0, None],
    "nested list": [[1, [2, [3, []]]]],
    "str": "plain",
    "unicode str": "naïve café 日本語 🙂",
    "empty str": "",
    "bytes": b"\x00\xff binary \x80",
    "empty bytes": b"",
    "int": 42,
    "negative int": -7,
    "int64 min": -(2**63),
    "uint64 max": 2**64 - 1,
    "big int": 2**200 + 1,
    "big negative int": -(2**130),
    "float": 3.141592653589793,
    "negative zero": -0.0,
    "infinity": math.inf,
    "tiny float": 5e-324,
    "true": True,
    "false": False,
    "none": None,
    "naive datetime": dt.datetime(2025, 10, 22, 9, 30, 1, 123456),
    "aware datetime": dt.datetime(2025, 10, 22, 9, 30, tzinfo=dt.UTC),
    "offset datetime": dt.datetime(2025, 10, 22, 9, 30, tzinfo=UTC_PLUS_2),
    "date": dt.date(2025, 10, 22),
    "time": dt.time(23, 59, 59, 999999),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "tuple": (1, "a", (2, b"b")),
    "empty tuple": (),
    "set": {3, 1, 2},
    "frozenset": frozenset({"a", "b"}),
    "int keys": {1: "one", 2: "two"},
    "tuple keys": {(1, 2): "pair", ("a",): "single"},
    "mixed": {"when": dt.datetime(2024, 1, 1), "raw": b"\x01", "n": 2**70, "t": (1,)},
}


@pytest.mark.parametrize("value", EXACT_ROUND_TRIPS.values(), ids=EXACT_ROUND_TRIPS.keys())
def test_supported_values_round_trip_exactly(tmp_path: Path, value: object) -> None:
    Store(tmp_path).put("ns", "key", value)

    replayed = Store(tmp_path).get("ns", "key")  # a new Store: nothing cached in memory

    assert replayed == value
    assert type(replayed) is type(value)
    if isinstance(value, dict):
        assert list(replayed) == list(value)


def test_nan_round_trips(store: Store) -> None:
    store.put("ns", "nan", [math.nan])
    assert math.isnan(store.get("ns", "nan")[0])


def test_dict_key_order_is_preserved_on_replay(tmp_path: Path) -> None:
    value = {"zeta": 1, "alpha": 2, "mu": {"b": 1, "a": 2}}
    Store(tmp_path).put("ns", "key", value)

    replayed = Store(tmp_path).get("ns", "key")

    assert list(replayed) == ["zeta", "alpha", "mu"]
    assert list(replayed["mu"]) == ["b", "a"]


class Color(enum.IntEnum):
    RED = 1


class Word(enum.StrEnum):
    HELLO = "hello"


SUBCLASSES_AS_BASE = {
    "OrderedDict": (collections.OrderedDict(b=1, a=2), dict),
    "defaultdict": (collections.defaultdict(list, {"a": [1]}), dict),
    "IntEnum": (Color.RED, int),
    "StrEnum": (Word.HELLO, str),
    "bytearray": (bytearray(b"ab"), bytes),
}


@pytest.mark.parametrize(
    ("value", "replay_type"), SUBCLASSES_AS_BASE.values(), ids=SUBCLASSES_AS_BASE.keys()
)
def test_subclasses_of_native_types_replay_as_the_base_type(
    store: Store, value: object, replay_type: type
) -> None:
    store.put("ns", "key", value)

    replayed = store.get("ns", "key")

    assert type(replayed) is replay_type
    assert replayed == value


@pytest.mark.parametrize(
    ("value", "type_name", "location"),
    [
        (object(), "object", ""),
        ({"id": uuid.UUID(int=1)}, "UUID", "['id']"),
        ({"choices": [{"price": Decimal("1.5")}]}, "Decimal", "['choices'][0]['price']"),
        ([1, "\ud800"], "str with unpaired surrogates", "[1]"),
        (lambda: None, "function", ""),
    ],
)
def test_unencodable_values_are_refused_naming_key_type_and_place(
    store: Store, value: object, type_name: str, location: str
) -> None:
    with pytest.raises(UnencodableValueError) as caught:
        store.put("ns", "the-key", value)

    message = str(caught.value)
    assert "'the-key'" in message
    assert type_name in message
    assert location in message
    assert "type=" in message  # it says what to do
    assert not store.root.exists()  # refused, not stored: nothing was written at all


def test_non_json_metadata_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(UnencodableValueError, match=r"'k'.*metadata.*bytes.*\['raw'\]"):
        store.put("ns", "k", "value", metadata={"raw": b"bytes"})
    assert not store.root.exists()


def test_same_value_gives_byte_identical_blob_files(tmp_path: Path) -> None:
    value = {"text": "The answer is 42." * 20, "tokens": [1, 2, 3], "tags": {"b", "a", "c"}}
    first = Store(tmp_path / "one").put("ns", "key", value)
    second = Store(tmp_path / "two").put("other/ns", "other-key", value)

    assert first.blob == second.blob
    one = (tmp_path / "one" / "blobs" / first.blob[:2] / f"{first.blob}.zst").read_bytes()
    two = (tmp_path / "two" / "blobs" / second.blob[:2] / f"{second.blob}.zst").read_bytes()
    assert one == two


def test_set_bytes_do_not_depend_on_the_hash_seed(tmp_path: Path, run_python) -> None:
    code = """
        import sys
        from castore import Store
        entry = Store(sys.argv[1]).put("ns", "k", {"tags": {"alpha", "beta", "gamma", "delta"}})
        print(entry.blob)
    """
    digests = {
        run_python(code, str(tmp_path / seed), env={"PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2", "3", "4")
    }
    assert len(digests) == 1
