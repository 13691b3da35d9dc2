"""Namespaces and keys: what is refused, and how long keys are shortened."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castore import Recorder, Store, request_key, request_summary, stored_key
from castore._storage.store import internals
from castore.errors import InvalidNameError


@pytest.mark.parametrize(
    "namespace",
    [
        "../escape",
        "tests/../../escape",
        "..",
        "/etc/passwd",
        "a//b",
        "a/",
        "",
        ".castore/locks",
        "C:\\temp",
        "tests\\windows",
        "nul",
        "tests/con.txt",
        "a\x00b",
        "trailing. ",
        None,
        42,
        # The campaign's cases: home-folder, look-alike, encoded, invisible, too long.
        "~/x",
        "~root/x",
        "\u2024\u2024/x",  # ONE DOT LEADER, twice
        "\uff0e\uff0e/x",  # FULLWIDTH FULL STOP, twice
        "\u2025/x",  # TWO DOT LEADER
        "tests\uff0fx",  # FULLWIDTH SOLIDUS
        "%2e%2e/x",
        "tests/%2Fetc",
        "tests/test_\u202etxt.exe",  # RIGHT-TO-LEFT OVERRIDE
        "tests/zero\u200bwidth",
        "tests/no\u00a0break",
        "tests/cafe\u0301",  # NFD: macOS would store it as another name
        "a/" * 150,
        "tests/" + "x" * 101,
    ],
)
def test_namespaces_that_could_escape_or_break_the_store_are_refused(
    tmp_path: Path, namespace: object
) -> None:
    store = Store(tmp_path / "store")

    with pytest.raises(InvalidNameError):
        store.put(namespace, "key", "value")  # type: ignore[arg-type]

    assert list(tmp_path.iterdir()) == []  # nothing written, inside or outside the store


@pytest.mark.parametrize(
    "namespace",
    [
        "tests/integration/test_translate",
        "ir_responses",
        "a.b-c",
        "tests/test_caf\u00e9",
        "tests/\u65e5\u672c\u8a9e",
        "a~b/100%",
        "tests/" + "x" * 100,
    ],
)
def test_ordinary_namespaces_are_accepted(store: Store, namespace: str) -> None:
    store.put(namespace, "k", 1)
    assert internals(store).indexes.path(namespace).is_file()
    assert internals(store).indexes.path(namespace).is_relative_to(store.root / "index")


def test_a_key_is_never_a_path_so_path_like_keys_stay_inside_the_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")

    store.put("ns", "../../../etc/passwd", "value")

    assert store.get("ns", "../../../etc/passwd") == "value"
    assert [path.name for path in tmp_path.iterdir()] == ["store"]


@pytest.mark.parametrize("key", ["", None, b"bytes"])
def test_empty_or_non_string_keys_are_refused(store: Store, key: object) -> None:
    with pytest.raises(InvalidNameError, match="non-empty string"):
        store.put("ns", key, "value")  # type: ignore[arg-type]


def test_keys_up_to_100_characters_are_kept_as_they_are() -> None:
    key = "k" * 100
    assert stored_key(key) == key


def test_long_keys_are_hashed_with_a_readable_prefix(store: Store) -> None:
    prompt = "Write a Python function that finds the index of an element in a list. " * 3
    other = prompt + "Return -1 if it is missing."

    store.put("ns", f"translate_{prompt}", "first")
    store.put("ns", f"translate_{other}", "second")

    keys = sorted(store.entries("ns"))
    assert len(keys) == 2
    assert all(key.startswith("translate_Write a Python function") for key in keys)
    assert all(len(key) <= 100 for key in keys)
    assert store.get("ns", f"translate_{prompt}") == "first"
    assert store.get("ns", f"translate_{other}") == "second"


def test_request_key_ignores_dict_order_and_excluded_parts() -> None:
    messages = [{"role": "user", "content": "hi"}]
    one = request_key(
        model="gpt-4o", messages=messages, temperature=0, api_key="sk-1", base_url="https://a"
    )
    two = request_key(
        temperature=0, messages=[{"content": "hi", "role": "user"}], model="gpt-4o", api_key="sk-2"
    )

    assert one == two
    assert one.startswith("gpt-4o-")
    assert request_key(model="gpt-4o", messages=messages, temperature=0.5) != one


def test_request_key_leaves_out_nested_parts_named_with_dots() -> None:
    with_auth = request_key(
        "call", url="/v1", headers={"Authorization": "Bearer 1"}, exclude=["headers.authorization"]
    )
    other_auth = request_key(
        "call", url="/v1", headers={"Authorization": "Bearer 2"}, exclude=["headers.authorization"]
    )
    assert with_auth == other_auth
    assert with_auth.startswith("call-")


@pytest.mark.parametrize(
    ("namespace", "reason"),
    [
        ("~root/x", "starts with '~'"),
        ("\u2024\u2024/x", "U+2024, which looks like '.'"),
        ("%2e%2e/x", "URL escape '%2e'"),
        ("tests/test_\u202etxt.exe", "invisible character U+202E"),
        ("a/" * 150 + "z", "is 301 characters long; castore accepts at most 200"),
        ("tests/cafe\u0301", "not in Unicode NFC form"),
    ],
)
def test_a_refused_namespace_says_why(store: Store, namespace: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as refused:
        store.put(namespace, "key", "value")
    assert reason in str(refused.value)


@pytest.mark.parametrize("legacy", ["~shared/x", "tests/" + "x" * 150, "a/" * 150 + "z"])
def test_a_namespace_an_older_castore_wrote_stays_readable_and_writable(
    tmp_path: Path, legacy: str
) -> None:
    """The stricter rules are for creating namespaces: the on-disk format is a promise, so
    an index written under the old rules (up to 400 characters, no '~' rule) still works."""
    store = Store(tmp_path / "store")
    with pytest.raises(InvalidNameError):
        store.put(legacy, "key", "value")
    store.put("tests/plain", "key", "value")  # write it as the old castore did: same layout
    old = internals(store).indexes.path("tests/plain")
    planted = internals(store).indexes.path(legacy)
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(old.read_text().replace('"tests/plain"', json.dumps(legacy)))

    reopened = Store(store.root)
    assert reopened.get(legacy, "key") == "value"
    reopened.put(legacy, "more", "also")
    assert Store(store.root).get(legacy, "more") == "also"
    assert legacy in Store(store.root).namespaces()


class NotGiven:
    """The shape of openai's and anthropic's NOT_GIVEN sentinel (falsy, by class name)."""

    def __bool__(self) -> bool:
        return False


def test_request_key_takes_ordinary_sdk_arguments_without_crashing() -> None:
    """Issue 14, bug 3: NOT_GIVEN, a pydantic class and 0 vs 0.0."""
    pydantic = pytest.importorskip("pydantic")

    class Answer(pydantic.BaseModel):
        text: str

    class Renamed(pydantic.BaseModel):
        content: str

    messages = [{"role": "user", "content": "hi"}]
    plain = request_key(model="gpt-4o", messages=messages)
    assert request_key(model="gpt-4o", messages=messages, response_format=NotGiven()) == plain
    assert request_key(model="gpt-4o", messages=messages, temperature=0) == request_key(
        model="gpt-4o", messages=messages, temperature=0.0
    )
    typed = request_key(model="gpt-4o", messages=messages, response_format=Answer)
    assert typed != plain
    assert typed == request_key(model="gpt-4o", messages=messages, response_format=Answer)
    assert typed != request_key(model="gpt-4o", messages=messages, response_format=Renamed)
    assert request_key(model="m", flags=[True]) != request_key(model="m", flags=[1])


def test_request_key_refuses_what_it_cannot_hash_with_a_castore_error() -> None:
    with pytest.raises(InvalidNameError, match="request_key cannot hash the object"):
        request_key(model="m", client=object())


#: What castore 0.1 (commit 36bb16b) derived for this request, before numbers compared by
#: value: its recordings are on disk in users' repositories under this key.
OLD_KEY_TEMPERATURE_0_0 = "gpt-4o-0f6f8f0fa6f0e912d5c4b8da1a30704e"


def test_a_recording_keyed_by_the_older_request_key_still_replays(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "hi"}]
    key = request_key(model="gpt-4o", messages=messages, temperature=0.0, max_tokens=100)
    assert key != OLD_KEY_TEMPERATURE_0_0
    assert key.legacy == OLD_KEY_TEMPERATURE_0_0  # type: ignore[attr-defined]
    Store(tmp_path).put("tests/test_old", OLD_KEY_TEMPERATURE_0_0, {"answer": "recorded in 0.1"})

    def must_not_be_called() -> object:
        raise AssertionError("the old recording was not found")

    replayed = Recorder(tmp_path, "tests/test_old").get_or_record_sync(key, must_not_be_called)
    assert replayed == {"answer": "recorded in 0.1"}
    # An int 0 was its own key before as well: unchanged, so nothing older to look for.
    assert request_key(model="m", temperature=0).legacy is None  # type: ignore[attr-defined]


#: A request body of the shapes keys meet (nested objects, keys of every msgpack length
#: class, non-ASCII, integral floats), and the keys castore derived for it before JSON
#: values took a faster path: keys on disk must stay the keys derived now.
PINNED_BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "héllo ✓"}]},
    ],
    "temperature": 0.0,
    "top_p": 0.5,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "Answer",
            "schema": {
                "properties": {
                    "a" * 40: {"type": "string"},
                    "b" * 300: {"type": "number"},
                    "ü": {"enum": [1, 2.0, None, True]},
                },
                "required": ["a" * 40],
            },
        },
    },
    "z": [],
    "": {},
}


def test_request_keys_of_json_bodies_are_the_keys_earlier_castore_derived() -> None:
    label = "POST api.openai.com/v1/chat/completions"
    key = request_key(label, exclude=(), body=PINNED_BODY)
    assert key == f"{label}-e5a9a38f30b24ec68692e0d703ed21f5"
    assert key.legacy == f"{label}-35326328f91d61cc1c5d370b5702c85a"  # type: ignore[attr-defined]
    plain = request_key(label, exclude=(), body=PINNED_BODY["messages"], n=1)
    assert plain == f"{label}-283c419f1cd6823b507cef0a71c4c261"
    assert plain.legacy is None  # type: ignore[attr-defined]


class _Object(dict):  # type: ignore[type-arg]
    """A dict by another type: request_key takes its general path for it."""


class _Array(list):  # type: ignore[type-arg]
    pass


def _general(value: object) -> object:
    if isinstance(value, dict):
        return _Object({name: _general(item) for name, item in value.items()})
    if isinstance(value, list):
        return _Array(_general(item) for item in value)
    return value


#: st.text()'s default alphabet, every code point UTF-8 can encode, named by category:
#: the default (``characters(codec="utf-8")``) encodes all 1.1 million code points to
#: find them, 3.5 s of CPU in each process whose ``.hypothesis`` holds no copy yet (every
#: xdist worker of a fresh clone, as CI's). Same characters, same draws.
TEXT = st.characters(exclude_categories=["Cs"])

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(TEXT),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(TEXT, max_size=40) | st.sampled_from(["a" * 300, "é" * 20]), inner
        )
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(body=_JSON)
def test_json_values_get_the_key_of_the_general_path(body: object) -> None:
    """JSON (what an HTTP body decodes to) is hashed on a path of its own, for speed;
    the same values as other mapping and sequence types take the general path."""
    fast = request_key("label", exclude=(), body=body)
    general = request_key("label", exclude=(), body=_general(body))
    assert fast == general
    assert fast.legacy == general.legacy  # type: ignore[attr-defined]


def _summary_of_the_whole(request: Any, prefix: str) -> dict[str, Any]:
    """request_summary as it was first written: the whole request made plain, then its
    first leaves taken. The summary now makes each part plain only when it reaches it."""
    from castore._recording import request_keys  # noqa: PLC0415 - the reference only

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                str(name): plain(item)
                for name, item in value.items()
                if not request_keys._is_not_given(item)
            }
        if isinstance(value, list | tuple):
            return [plain(item) for item in value if not request_keys._is_not_given(item)]
        if (
            isinstance(value, type)
            or dataclasses.is_dataclass(value)
            or hasattr(value, "model_dump")
        ):
            return plain(request_keys._canonical(value))
        return value

    found: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = [(prefix, plain(request))]
    while pending and len(found) < request_keys.SUMMARY_LEAVES:
        where, item = pending.pop(0)
        if isinstance(item, Mapping):
            pending[:0] = [(f"{where}.{key}", member) for key, member in item.items()]
        elif isinstance(item, list | tuple):
            pending[:0] = [(f"{where}[{n}]", member) for n, member in enumerate(item)]
        else:
            found[where] = request_keys._short_leaf(item)
    return found


@dataclasses.dataclass
class Tool:
    name: str
    schema: dict[str, Any]


_SUMMARISED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(TEXT, max_size=400)
    | st.builds(NotGiven)
    | st.builds(Tool, st.text(TEXT, max_size=5), st.just({"b": 1, "a": [2]})),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(
            st.text(TEXT, max_size=3) | st.integers(0, 3).map(str) | st.integers(0, 3),
            inner,
            max_size=6,
        )
    ),
    max_leaves=80,
)


@settings(max_examples=200, deadline=None)
@given(request=_SUMMARISED)
def test_a_summary_reads_only_as_far_as_its_leaves_and_is_the_same(request: Any) -> None:
    assert request_summary(request, "body", exclude=()) == _summary_of_the_whole(request, "body")
