"""Upkeep with nothing to do reads no index: ``castore pack`` with no loose blob, and a
``castore gc`` of a store as the last gc left it (listings and a few stats decide).

Each check runs in a child process whose audit hook counts the index files it opens."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from click.testing import CliRunner

from castore import Store
from castore._upkeep.collect import collect_garbage
from castore._upkeep.packing import pack_store
from castore.cli import main

CHILD = textwrap.dedent(
    """
    import json, sys
    root = sys.argv[1]
    opened = []

    def hook(event, args):
        if event == "open" and isinstance(args[0], str) and "/index/" in args[0]:
            opened.append(args[0])

    sys.addaudithook(hook)
    from castore import Store
    from castore._upkeep.collect import collect_garbage
    from castore._upkeep.packing import pack_store

    store = Store(root)
    packing = pack_store(store)
    packed_opened = len(opened)
    collection = collect_garbage(store)
    print(json.dumps({
        "pack": [packed_opened, packing.blobs_packed],
        "gc": [len(opened) - packed_opened, collection.unchanged, len(collection.removed)],
    }))
    """
)


def upkeep_in_a_child(root: Path) -> dict[str, list[int]]:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True
    )
    result: dict[str, list[int]] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_pack_and_gc_with_nothing_to_do_open_no_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for module in range(20):
        for key in range(5):
            store.put(f"tests/test_m{module:02d}", f"key {key}", {"answer": f"{module} {key}"})
    pack_store(store)
    time.sleep(0.2)  # older than the stamp's racy margin: the next gc's stamp is trusted
    collect_garbage(Store(store.root))

    idle = upkeep_in_a_child(store.root)
    assert idle["pack"] == [0, 0]
    assert idle["gc"] == [0, True, 0]

    store.put("tests/test_m03", "key 1", {"answer": "re-recorded"})  # a new loose blob
    busy = upkeep_in_a_child(store.root)
    assert busy["pack"][0] >= 20 and busy["pack"][1] == 1  # it had work: it read them
    assert busy["gc"][0] >= 20 and busy["gc"][1] is False


def test_castore_gc_says_when_the_store_is_as_the_last_gc_left_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.put("tests/test_a", "key", {"answer": 1})
    time.sleep(0.2)
    runner = CliRunner()
    first = runner.invoke(main, ["--root", str(store.root), "gc", "--json"])
    assert first.exit_code == 0 and '"unchanged": false' in first.output
    second = runner.invoke(main, ["--root", str(store.root), "gc"])
    assert second.exit_code == 0
    assert "as the last gc left it: nothing to collect" in second.output
