"""Import files from outside: every malformed one is refused by name, and nothing of it is
written; YAML bombs are refused before they expand."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from castore import Store
from castore._upkeep.import_documents import MAX_EXPANDED_NODES
from castore._upkeep.importers import import_paths
from castore.cli import main
from castore.errors import ImportFormatError

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
interactions: [{request: {method: GET, uri: 'http://x/'}, response: *i}]
"""


def refused(tmp_path: Path, name: str, text: str) -> str:
    """Import ``text`` as ``name``; return the error, and check nothing reached the store."""
    source = tmp_path / name
    source.write_text(text)
    store = Store(tmp_path / "store")
    with pytest.raises(ImportFormatError) as error:
        import_paths(store, [source])
    assert str(source) in str(error.value)
    assert not (tmp_path / "store").exists() or store.namespaces() == []
    return str(error.value)


def test_a_billion_laughs_cassette_is_refused_before_it_expands(tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    message = refused(tmp_path, "laughs.yaml", BILLION_LAUGHS)
    assert f"expand to more than {MAX_EXPANDED_NODES:,} nodes" in message
    assert time.perf_counter() - started < 5
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, grown_mib


@pytest.mark.parametrize(
    "text",
    [
        "interactions: &a [*a]\n",
        "interactions: [{request: {}, response: &r {body: *r}}]\n",
        "interactions: [{request: &q {again: [1, *q]}, response: 1}]\n",
    ],
)
def test_a_self_referencing_anchor_is_refused_not_a_recursion_error(
    tmp_path: Path, text: str
) -> None:
    assert "anchor refers to itself" in refused(tmp_path, "loop.yaml", text)


def test_a_cassette_with_shared_anchors_of_fair_size_still_imports(tmp_path: Path) -> None:
    """PyYAML itself writes &id001 anchors for repeated headers: those are fine."""
    source = tmp_path / "shared.yaml"
    source.write_text(
        "interactions:\n"
        "- request: {method: GET, uri: 'http://x/1', headers: &h {accept: [json]}}\n"
        "  response: {status: {code: 200}, body: {string: one}}\n"
        "- request: {method: GET, uri: 'http://x/2', headers: *h}\n"
        "  response: {status: {code: 200}, body: {string: two}}\n"
    )
    report = import_paths(Store(tmp_path / "store"), [source])
    assert report.entries == 2


EXPORT = '{"$castore_export": {"format": 1, "namespace": "tests/x"}, '


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("marker.json", '{"$castore_export": 1}', "header must be an object"),
        ("newer.json", '{"$castore_export": {"format": 9, "namespace": "x"}}', "format 9"),
        ("stream.json", EXPORT + '"k": {"response": 1, "stream": 5}}', "'stream' must be"),
        ("schema.json", EXPORT + '"k": {"response": 1, "schema": [1]}}', "'schema' must be"),
        ("duration.json", EXPORT + '"k": {"response": 1, "duration": -5}}', "'duration'"),
        ("when.json", EXPORT + '"k": {"response": 1, "recorded_at": "soon"}}', "'recorded_at'"),
        ("base64.json", EXPORT + '"k": {"response": {"$base64": "!!!"}}}', "base64"),
        ("tuple.json", EXPORT + '"k": {"response": {"$tuple": 5}}}', "$tuple must hold a list"),
        ("delta.json", EXPORT + '"k": {"response": {"$timedelta": [1]}}}', "$timedelta"),
        ("float.json", EXPORT + '"k": {"response": {"$float": "1e999"}}}', "$float"),
        ("pairs.json", EXPORT + '"k": {"response": {"$map": [1, 2]}}}', "$map"),
        ("hash.json", EXPORT + '"k": {"response": {"$set": [[1]]}}}', "unhashable"),
        ("item.json", EXPORT + '"k": 5}', "'response'"),
        ("metalist.json", '{"k": {"response": 1, "metadata": [1]}}', "metadata"),
        ("okey.json", '{"k": {"response": 1, "original_key": 5}}', "'original_key'"),
        ("nan.json", '{"k": {"response": NaN}}', "NaN"),
        ("bigint.json", '{"k": {"response": ' + "9" * 5000 + "}}", "digits"),
        ("deep.json", '{"k": {"response": ' + "[" * 3000 + "]" * 3000 + "}}", None),
        ("space.json", EXPORT.replace("tests/x", "~root/x") + '"k": {"response": 1}}', "'~'"),
        ("request.yaml", "interactions: [{request: GET, response: 1}]", "'request' must be"),
        ("none.yaml", "interactions: [5]", "has no response"),
        ("tag.yaml", "interactions: !!python/object:os.system [ls]", "cannot be parsed"),
        ("broken.yaml", "interactions: [\n", "cannot be parsed"),
        ("key.yaml", "interactions: [{request: {? [1]: 2}, response: 1}]", "cannot be parsed"),
    ],
)
def test_a_malformed_import_file_is_refused_by_name_and_writes_nothing(
    tmp_path: Path, name: str, text: str, reason: str | None
) -> None:
    message = refused(tmp_path, name, text)
    if reason:
        assert reason in message, message


def test_a_bad_file_in_a_walked_folder_is_skipped_whole_and_the_good_ones_import(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps({"k": {"response": "fine"}}))
    (folder / "bad.json").write_text(
        json.dumps({"k1": {"response": "kept?"}, "k2": {"response": 1, "metadata": [1]}})
    )
    store = Store(tmp_path / "store")
    report = import_paths(store, [folder])
    assert [item.namespace for item in report.files] == ["good"]
    assert [path.name for path, _ in report.skipped] == ["bad.json"]
    assert store.namespaces() == ["good"]  # nothing of bad.json, not even k1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_or_a_device_named_for_import_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for source in (fifo, Path("/dev/zero")):
        with pytest.raises(ImportFormatError, match="not a regular file"):
            import_paths(Store(tmp_path / "store"), [source])


def test_the_cli_reports_a_bad_import_file_with_exit_3_and_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "marker.json"
    source.write_text('{"$castore_export": 1}')
    result = CliRunner().invoke(main, ["--root", str(tmp_path / "store"), "import", str(source)])
    assert result.exit_code == 3, result.output
    assert "marker.json" in result.output
    assert "Traceback" not in result.output
