"""The pieces of ``castore diff``: JSON paths, ignore patterns, text diffs and the share of
changed text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castore._recording.json_paths import PatternError, format_path, parse_pattern
from castore._upkeep.store_diff import answer_view
from castore._upkeep.value_diff import diff_streams, diff_values, opcodes, text_diff


@pytest.mark.parametrize(
    ("pattern", "path", "covered"),
    [
        ("$..id", ("id",), True),
        ("$..id", ("choices", 0, "message", "id"), True),
        ("$..id", ("choices", 0, "message", "identity"), False),
        ("$..usage", ("usage", "total_tokens"), True),  # a parent covers its subtree
        ("$.usage", ("body", "usage"), False),
        ("$.choices[*].message", ("choices", 3, "message", "content"), True),
        ("$.choices[0].message", ("choices", 1, "message"), False),
        ("$.*.created", ("anything", "created"), True),
        ("$['odd key']", ("odd key", "x"), True),
        ("$..content[*].id", ("body", "content", 2, "id"), True),
        ("headers.date", ("headers", "date"), True),  # short for $.headers.date
        ("$.headers.X-Request-Id", ("headers", "x-request-id"), True),  # names in lower case
        ("$..Date", ("headers", "date"), False),  # but only header names
    ],
)
def test_ignore_patterns(pattern: str, path: tuple[str | int, ...], covered: bool) -> None:
    assert parse_pattern(pattern).covers(path) is covered


@pytest.mark.parametrize("bad", ["(choices", "$", "$.", "$[x]", "$[1", "$..['a']", "$ .a"])
def test_bad_patterns_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(PatternError, match="ignore pattern"):
        parse_pattern(bad)


def test_paths_read_as_json_paths() -> None:
    assert format_path(("choices", 0, "message", "odd key")) == '$.choices[0].message["odd key"]'


def test_numbers_compare_by_value() -> None:
    assert diff_values({"t": 0}, {"t": 0.0}).changes == []
    assert [change.where for change in diff_values({"t": 0}, {"t": 0.5}).changes] == ["$.t"]


def test_lists_of_other_lengths_report_added_and_removed_items() -> None:
    changes = diff_values({"a": [1, 2, 3]}, {"a": [1, 5]}).changes
    assert [(c.where, c.kind) for c in changes] == [("$.a[1]", "changed"), ("$.a[2]", "removed")]


def test_share_of_changed_text_counts_words() -> None:
    old = {"content": "one two three four five six seven eight nine ten", "n": 1}
    new = {"content": "one two three four five six seven eight nine TEN", "n": 2}
    result = diff_values(old, new)
    assert result.words == 10 and result.changed_words == 1
    assert result.share == pytest.approx(0.1)


def test_streams_compare_joined_text_and_chunk_count() -> None:
    def chunks(*words: str) -> list[dict[str, object]]:
        return [{"choices": [{"delta": {"content": word}}]} for word in words]

    assert diff_streams(chunks("Hel", "lo"), chunks("Hel", "lo")).changes == []
    rechunked = diff_streams(chunks("Hel", "lo"), chunks("Hello"))
    assert [change.path for change in rechunked.changes] == [("(chunks)",)]
    assert rechunked.changed_words == 0
    reworded = diff_streams(chunks("Hello ", "world"), chunks("Hello ", "there"))
    assert reworded.changes[0].old == "Hello world" and reworded.changed_words == 1


def test_a_json_body_string_is_compared_as_json() -> None:
    def response(identifier: str, text: str) -> dict[str, object]:
        body = json.dumps({"id": identifier, "content": [{"text": text}]})
        return {"status": 200, "body": {"string": body}}

    old, new = response("msg_1", "same"), response("msg_2", "same")
    assert [c.where for c in diff_values(old, new).changes] == ["$.body.string.id"]
    assert diff_values(old, new, [parse_pattern("$..id")]).changes == []


def test_auto_typed_values_are_unwrapped_with_their_private_attributes() -> None:
    stored = {
        "$castore_type": "openai.types.chat.chat_completion:ChatCompletion",
        "value": {"id": "x"},
        "private": {"_request_id": "req_1"},
    }
    assert answer_view(stored) == {
        "$castore_type": "openai.types.chat.chat_completion:ChatCompletion",
        "id": "x",
        "_request_id": "req_1",
    }


words = st.lists(st.sampled_from(["a", "b", "c", "d", " "]), max_size=40)


@given(words, words)
def test_opcodes_rebuild_the_new_text_from_the_old(old: list[str], new: list[str]) -> None:
    rebuilt: list[str] = []
    for tag, i1, i2, j1, j2 in opcodes(old, new):
        if tag == "equal":
            assert old[i1:i2] == new[j1:j2]
            rebuilt += old[i1:i2]
        else:
            rebuilt += new[j1:j2]
    assert rebuilt == new


def test_opcodes_give_up_matching_only_past_the_work_limit() -> None:
    old = [f"w{n}" for n in range(1500)]  # 1500 x 1500 is under the limit
    new = ["start", *old[1:700], "changed", *old[701:1499], "end"]
    tags = [tag for tag, *_ in opcodes(old, new)]
    assert tags.count("equal") >= 2  # difflib ran on the middle and found the kept runs
    huge_old, huge_new = [f"a{n}" for n in range(5000)], [f"b{n}" for n in range(5000)]
    assert [tag for tag, *_ in opcodes(huge_old, huge_new)] == ["replace"]


def test_text_diff_is_by_words_for_one_line_and_by_lines_for_several() -> None:
    words = text_diff("the cat sat on the mat", "the dog sat on the mat")
    assert ("-", "cat") in words.pieces and ("+", "dog") in words.pieces
    lines = text_diff("one\ntwo\nthree\n", "one\n2\nthree\n")
    assert lines.unit == "lines" and ("-", "two\n") in lines.pieces


def test_a_pretty_printed_json_body_with_a_final_newline_is_json_too() -> None:
    old = {"body": json.dumps({"id": "a", "text": "same"}, indent=2) + "\n"}
    new = {"body": json.dumps({"id": "b", "text": "same"}, indent=2) + "\n"}
    assert diff_values(old, new, [parse_pattern("$..id")]).changes == []
